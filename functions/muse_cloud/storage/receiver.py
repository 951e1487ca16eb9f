"""What a repository holds, as the verification engine's ``ReceiverView`` during one ingestion
run."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from muse_cloud.storage.backend import Item
from muse_cloud.storage.commits import CommitStore, Lineage
from muse_cloud.storage.pack_index import PackIndex
from muse_cloud.storage.snapshots import SnapshotStore


@dataclass
class HeldCommits:
    """The held commits a run asks about, each read once: verification asks about the pack's
    parents, the lineage about their generations and next ancestors, the plan's ancestry walk
    about the heads, and these are usually the same one or two commits. A commit item never
    changes once written; only ones found held are kept, so a commit written meanwhile is
    still found."""

    repo_id: str
    commits: CommitStore
    read: dict[str, Lineage] = field(default_factory=dict)

    def lineages(self, ids: Collection[str]) -> dict[str, Lineage]:
        unread = [i for i in ids if i not in self.read]
        if unread:
            self.read.update(self.commits.lineages(self.repo_id, unread))
        return {i: self.read[i] for i in ids if i in self.read}

    def generations(self, ids: Collection[str]) -> dict[str, tuple[tuple[str, ...], int]]:
        return {i: (held.parents, held.generation) for i, held in self.lineages(ids).items()}


@dataclass
class RepoReceiver:
    """Commits through the run's reads (``HeldCommits``); a delta base rebuilt from its stored
    item when the run has just read it (``bases``), read otherwise."""

    repo_id: str
    commits: HeldCommits
    snapshots: SnapshotStore
    pack_index: PackIndex
    bases: Mapping[str, Item]

    def known_objects(self, object_ids: Collection[str]) -> set[str]:
        return self.pack_index.known(self.repo_id, object_ids)

    def known_snapshots(self, snapshot_ids: Collection[str]) -> set[str]:
        return self.snapshots.known(self.repo_id, snapshot_ids)

    def known_commits(self, commit_ids: Collection[str]) -> set[str]:
        return set(self.commits.lineages(commit_ids))

    def snapshot_manifest(self, snapshot_id: str) -> dict[str, str] | None:
        item = self.bases.get(snapshot_id)
        if item is None:
            return self.snapshots.manifest(self.repo_id, snapshot_id)
        return self.snapshots.rebuild(self.repo_id, snapshot_id, item)
