"""Commits: the full record the client sent (msgpack), plus its parents and generation number.

The generation (1 + the highest generation among the parents) lets an ancestry walk stop at
commits too old to lead to the one it looks for, as git's commit-graph does. ``ancestors`` lists
the next first-parent ancestors, so a walk down a long history reads them in batches instead of
one request per commit.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import msgpack

from muse_cloud.storage import dynamo, keys
from muse_core.commits import CommitRecord

ANCESTOR_HINTS = 32


@dataclass(frozen=True)
class StoredCommit:
    record: CommitRecord
    generation: int
    ancestors: tuple[str, ...] = ()


class CommitStore:
    def put_many(self, repo_id: str, commits: Iterable[StoredCommit]) -> int:
        items = [
            {
                **keys.commit(repo_id, c.record.commit_id),
                "record": msgpack.packb(c.record.to_dict(), use_bin_type=True),
                "generation": c.generation,
                "parents": list(c.record.parent_ids) or None,
                "snapshot_id": c.record.snapshot_id,
                "committed_at": c.record.committed_at,
                "ancestors": dynamo.pack_ids(c.ancestors),
            }
            for c in commits
        ]
        return dynamo.batch_write(items)

    def get(self, repo_id: str, commit_id: str) -> StoredCommit | None:
        item = dynamo.get_item(keys.commit(repo_id, commit_id))
        return _stored(item) if item else None

    def get_many(self, repo_id: str, commit_ids: Collection[str]) -> dict[str, StoredCommit]:
        items = dynamo.batch_get(keys.commit(repo_id, c) for c in commit_ids)
        stored = (_stored(i) for i in items)
        return {s.record.commit_id: s for s in stored}

    def generations(
        self, repo_id: str, commit_ids: Collection[str]
    ) -> dict[str, tuple[tuple[str, ...], int]]:
        """Parents and generation of each held commit, without decoding the records."""
        items = dynamo.batch_get(
            (keys.commit(repo_id, c) for c in commit_ids), projection="pk, parents, generation"
        )
        return {
            i["pk"].rsplit("#", 1)[1]: (tuple(i.get("parents") or ()), int(i["generation"]))
            for i in items
        }

    def ancestor_hints(
        self, repo_id: str, commit_ids: Collection[str]
    ) -> dict[str, tuple[str, ...]]:
        items = dynamo.batch_get((keys.commit(repo_id, c) for c in commit_ids), "pk, ancestors")
        return {i["pk"].rsplit("#", 1)[1]: dynamo.unpack_ids(i.get("ancestors")) for i in items}

    def known(self, repo_id: str, commit_ids: Collection[str]) -> set[str]:
        return set(self.generations(repo_id, commit_ids))


def _stored(item: dynamo.Item) -> StoredCommit:
    record = CommitRecord.from_dict(msgpack.unpackb(item["record"], raw=False))
    return StoredCommit(
        record=record,
        generation=int(item["generation"]),
        ancestors=dynamo.unpack_ids(item.get("ancestors")),
    )
