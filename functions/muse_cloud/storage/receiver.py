"""What a repository holds, as the verification engine's ``ReceiverView``."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from muse_cloud.storage.commits import CommitStore
from muse_cloud.storage.objects import ObjectIndex
from muse_cloud.storage.pack_index import PackIndex
from muse_cloud.storage.snapshots import SnapshotStore


@dataclass
class RepoStores:
    """The stores of one deployment, shared by ingestion, the API and fetch."""

    commits: CommitStore = field(default_factory=CommitStore)
    snapshots: SnapshotStore = field(default_factory=SnapshotStore)
    objects: ObjectIndex = field(default_factory=ObjectIndex)
    pack_index: PackIndex = field(default_factory=PackIndex)


@dataclass
class RepoReceiver:
    repo_id: str
    stores: RepoStores

    def known_objects(self, object_ids: Collection[str]) -> set[str]:
        return self.stores.objects.known(self.repo_id, object_ids)

    def known_snapshots(self, snapshot_ids: Collection[str]) -> set[str]:
        return self.stores.snapshots.known(self.repo_id, snapshot_ids)

    def known_commits(self, commit_ids: Collection[str]) -> set[str]:
        return self.stores.commits.known(self.repo_id, commit_ids)

    def snapshot_manifest(self, snapshot_id: str) -> dict[str, str] | None:
        return self.stores.snapshots.manifest(self.repo_id, snapshot_id)
