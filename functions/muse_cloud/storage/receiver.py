"""What a repository holds, as the verification engine's ``ReceiverView``."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from muse_cloud.storage.commits import CommitStore
from muse_cloud.storage.pack_index import PackIndex
from muse_cloud.storage.snapshots import SnapshotStore


@dataclass
class RepoReceiver:
    repo_id: str
    commits: CommitStore
    snapshots: SnapshotStore
    pack_index: PackIndex

    def known_objects(self, object_ids: Collection[str]) -> set[str]:
        return self.pack_index.known(self.repo_id, object_ids)

    def known_snapshots(self, snapshot_ids: Collection[str]) -> set[str]:
        return self.snapshots.known(self.repo_id, snapshot_ids)

    def known_commits(self, commit_ids: Collection[str]) -> set[str]:
        return self.commits.known(self.repo_id, commit_ids)

    def snapshot_manifest(self, snapshot_id: str) -> dict[str, str] | None:
        return self.snapshots.manifest(self.repo_id, snapshot_id)
