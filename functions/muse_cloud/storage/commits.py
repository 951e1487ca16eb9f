"""Commits: the full record the client sent (msgpack), plus its parents and generation number.

The generation (1 + the highest generation among the parents) lets an ancestry walk stop at
commits too old to lead to the one it looks for, as git's commit-graph does. ``ancestors`` lists
the next first-parent ancestors (``ancestor_hints``), so a walk down a long history reads them in
batches instead of one request per commit.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import msgpack

from muse_cloud.storage import keys, layout
from muse_cloud.storage.backend import Item, Table
from muse_cloud.storage.dynamo import pack_ids, unpack_ids
from muse_cloud.storage.values import LargeValues
from muse_core.commits import CommitRecord

ANCESTOR_HINTS = 32


def ancestor_hints(parent: str | None, known: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """A commit's ``ancestors``: its first parent, then the parent's own (``known``), back to
    the nearest commit that lists ``ANCESTOR_HINTS``. Down a first-parent chain the lists run
    32, 31, ..., 1, 32, ...: a walk's first read reaches a full list, and the lists cost half the
    bytes of full ones (a seed commit's item: 1.7 KB -> 1.2 KB)."""
    if parent is None:
        return ()
    above = known.get(parent, ())
    return (parent,) if len(above) >= ANCESTOR_HINTS else (parent, *above)


@dataclass(frozen=True)
class StoredCommit:
    record: CommitRecord
    generation: int
    ancestors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lineage:
    """Where a held commit sits, without its record: parents, generation, next ancestors."""

    parents: tuple[str, ...]
    generation: int
    ancestors: tuple[str, ...]


def _commit_id(item: Item) -> str:
    return str(item["pk"]).rsplit("#", 1)[1]


@dataclass
class CommitStore:
    table: Table
    values: LargeValues

    def put_many(self, repo_id: str, commits: Iterable[StoredCommit]) -> None:
        """Write commits parents first, so a commit that can be read has all its ancestors."""
        items = []
        for c in commits:
            item: Item = {
                **keys.commit(repo_id, c.record.commit_id),
                "generation": c.generation,
                # Packed, and nothing the record holds besides: each attribute costs a write.
                "parents": pack_ids(c.record.parent_ids),
                "ancestors": pack_ids(c.ancestors),
            }
            record = msgpack.packb(c.record.to_dict(), use_bin_type=True)
            key = layout.large_value(repo_id, "commits", c.record.commit_id)
            self.values.store(item, "record", record, key)
            items.append(item)
        self.table.put_many(items, ordered=True)

    def get(self, repo_id: str, commit_id: str) -> StoredCommit | None:
        item = self.table.get(keys.commit(repo_id, commit_id))
        return self._stored(item) if item else None

    def get_many(self, repo_id: str, commit_ids: Collection[str]) -> dict[str, StoredCommit]:
        items = self.table.get_many(keys.commit(repo_id, c) for c in commit_ids)
        stored = (self._stored(i) for i in items)
        return {s.record.commit_id: s for s in stored}

    def generations(
        self, repo_id: str, commit_ids: Collection[str]
    ) -> dict[str, tuple[tuple[str, ...], int]]:
        """Parents and generation of each held commit, without decoding the records."""
        items = self.table.get_many(
            (keys.commit(repo_id, c) for c in commit_ids), ("parents", "generation")
        )
        return {_commit_id(i): (unpack_ids(i.get("parents")), int(i["generation"])) for i in items}

    def lineages(self, repo_id: str, commit_ids: Collection[str]) -> dict[str, Lineage]:
        """``generations`` with each commit's next first-parent ancestors, in one read."""
        items = self.table.get_many(
            (keys.commit(repo_id, c) for c in commit_ids), ("parents", "generation", "ancestors")
        )
        return {
            _commit_id(i): Lineage(
                unpack_ids(i.get("parents")),
                int(i["generation"]),
                unpack_ids(i.get("ancestors")),
            )
            for i in items
        }

    def known(self, repo_id: str, commit_ids: Collection[str]) -> set[str]:
        return set(self.generations(repo_id, commit_ids))

    def _stored(self, item: Item) -> StoredCommit:
        record = msgpack.unpackb(self.values.load(item, "record"), raw=False)
        return StoredCommit(
            record=CommitRecord.from_dict(record),
            generation=int(item["generation"]),
            ancestors=unpack_ids(item.get("ancestors")),
        )
