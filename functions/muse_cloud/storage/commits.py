"""Commits: the full record the client sent (msgpack), plus its parents and generation number.

The generation (1 + the highest generation among the parents) lets an ancestry walk stop at
commits too old to lead to the one it looks for, as git's commit-graph does. ``ancestors`` lists
the next first-parent ancestors, so a walk down a long history reads them in batches instead of
one request per commit.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

import msgpack

from muse_cloud.storage import dynamo, keys
from muse_cloud.storage.packs import PackStore, large_value_key
from muse_core.commits import CommitRecord

ANCESTOR_HINTS = 32


@dataclass(frozen=True)
class StoredCommit:
    record: CommitRecord
    generation: int
    ancestors: tuple[str, ...] = ()


@dataclass
class CommitStore:
    packs: PackStore = field(default_factory=PackStore)

    def put_many(self, repo_id: str, commits: Iterable[StoredCommit]) -> tuple[int, int]:
        """Write commits parents first, so a commit that can be read has all its ancestors;
        returns the (DynamoDB, S3) requests made."""
        s3_requests = 0
        items = []
        for c in commits:
            item: dynamo.Item = {
                **keys.commit(repo_id, c.record.commit_id),
                "generation": c.generation,
                # Packed, and nothing the record holds besides: each attribute costs a write.
                "parents": dynamo.pack_ids(c.record.parent_ids),
                "ancestors": dynamo.pack_ids(c.ancestors),
            }
            record = msgpack.packb(c.record.to_dict(), use_bin_type=True)
            key = large_value_key(repo_id, "commits", c.record.commit_id)
            s3_requests += self.packs.store_value(item, "record", record, key)
            items.append(item)
        return dynamo.batch_write(items, ordered=True), s3_requests

    def get(self, repo_id: str, commit_id: str) -> StoredCommit | None:
        item = dynamo.get_item(keys.commit(repo_id, commit_id))
        return self._stored(item) if item else None

    def get_many(self, repo_id: str, commit_ids: Collection[str]) -> dict[str, StoredCommit]:
        items = dynamo.batch_get(keys.commit(repo_id, c) for c in commit_ids)
        stored = (self._stored(i) for i in items)
        return {s.record.commit_id: s for s in stored}

    def generations(
        self, repo_id: str, commit_ids: Collection[str]
    ) -> dict[str, tuple[tuple[str, ...], int]]:
        """Parents and generation of each held commit, without decoding the records."""
        items = dynamo.batch_get(
            (keys.commit(repo_id, c) for c in commit_ids), projection="pk, parents, generation"
        )
        return {
            i["pk"].rsplit("#", 1)[1]: (dynamo.unpack_ids(i.get("parents")), int(i["generation"]))
            for i in items
        }

    def ancestor_hints(
        self, repo_id: str, commit_ids: Collection[str]
    ) -> dict[str, tuple[str, ...]]:
        items = dynamo.batch_get((keys.commit(repo_id, c) for c in commit_ids), "pk, ancestors")
        return {i["pk"].rsplit("#", 1)[1]: dynamo.unpack_ids(i.get("ancestors")) for i in items}

    def known(self, repo_id: str, commit_ids: Collection[str]) -> set[str]:
        return set(self.generations(repo_id, commit_ids))

    def _stored(self, item: dynamo.Item) -> StoredCommit:
        record = msgpack.unpackb(self.packs.load_value(item, "record"), raw=False)
        return StoredCommit(
            record=CommitRecord.from_dict(record),
            generation=int(item["generation"]),
            ancestors=dynamo.unpack_ids(item.get("ancestors")),
        )
