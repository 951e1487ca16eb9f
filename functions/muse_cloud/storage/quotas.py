"""Counters of what each repository and each owner stores and how often they push.

Bytes are counted once per pack, when ingestion first writes it (a ``STORED#`` item per pack
makes the count idempotent, and the repository's META item must still be there), and freed once
(``free_pack`` when garbage collection deletes a pack, ``free_repository`` when a repository is
deleted). Pushes are counted per fixed window of ``WINDOW_SECONDS``, one item per window and
scope that expires by TTL. Every change is a DynamoDB ADD under a condition, in one transaction
where two counters move together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from muse_cloud.domain.quotas import WINDOW_SECONDS, Scope
from muse_cloud.storage import keys
from muse_cloud.storage.backend import (
    NEW_ITEM,
    Absent,
    Below,
    Change,
    Check,
    ConditionFailed,
    Delete,
    Equals,
    Exists,
    Key,
    Put,
    Table,
    Update,
    all_of,
    any_of,
)

# A window's counter outlives its window by this long before TTL removes it.
_WINDOW_KEPT_SECONDS = 3600


@dataclass(frozen=True)
class Stored:
    bytes: int = 0
    packs: int = 0

    @classmethod
    def of(cls, item: dict[str, Any] | None) -> Stored:
        item = item or {}
        return cls(int(item.get("bytes", 0)), int(item.get("packs", 0)))


@dataclass(frozen=True)
class Holdings:
    """What a repository and its owner store, and whether one pack is among it already."""

    repository: Stored
    owner: Stored
    pack_held: bool


@dataclass
class QuotaStore:
    table: Table

    def holdings(self, repo_id: str, owner: str, mpack_hex: str) -> Holdings:
        """One BatchGetItem: the repository's and the owner's counters and the pack's mark."""
        wanted = [
            keys.repo_usage(repo_id),
            keys.owner_usage(owner),
            keys.stored_pack(repo_id, mpack_hex),
        ]
        found = {(item["pk"], item["sk"]): item for item in self.table.get_many(wanted)}
        repository, by_owner, mark = (found.get((key["pk"], key["sk"])) for key in wanted)
        return Holdings(Stored.of(repository), Stored.of(by_owner), pack_held=mark is not None)

    def repository(self, repo_id: str, window: int) -> tuple[Stored, int]:
        """What a repository stores, and its pushes in ``window``."""
        partition = keys.repo_partition(repo_id)
        return self._tally(keys.repo_usage(repo_id), keys.push_window(partition, window))

    def owner(self, owner: str, window: int) -> tuple[Stored, int]:
        """What an owner stores in all their repositories, and their pushes in ``window``."""
        partition = keys.owner_partition(owner)
        return self._tally(keys.owner_usage(owner), keys.push_window(partition, window))

    def _tally(self, usage: Key, window: Key) -> tuple[Stored, int]:
        found = {item["sk"]: item for item in self.table.get_many([usage, window])}
        pushes = found.get(window["sk"], {}).get("pushes", 0)
        return Stored.of(found.get(usage["sk"])), int(pushes)

    def _pushes(self, partition: str, window: int) -> int:
        item = self.table.get(keys.push_window(partition, window))
        return int(item["pushes"]) if item else 0

    def take_push(
        self, repo_id: str, owner: str, window: int, repo_limit: int, owner_limit: int
    ) -> Scope | None:
        """Count one push in ``window`` for the repository and its owner, both or neither;
        the scope whose limit refused it, if one did."""
        ttl = (window + 1) * WINDOW_SECONDS + _WINDOW_KEPT_SECONDS
        scopes = (
            (keys.repo_partition(repo_id), repo_limit),
            (keys.owner_partition(owner), owner_limit),
        )
        try:
            self.table.transact(
                [
                    Change(
                        keys.push_window(partition, window),
                        Update(add={"pushes": 1}, set_if_absent={"ttl": ttl}),
                        any_of(Absent("pushes"), Below("pushes", limit)),
                    )
                    for partition, limit in scopes
                ]
            )
        except ConditionFailed:
            # Read rather than trust the cancellation reasons (moto omits them at times):
            # within a window the counters only grow, so one of them is at its limit.
            at_limit = self._pushes(scopes[0][0], window) >= repo_limit
            return "repository" if at_limit else "owner"
        return None

    def count_stored(self, repo_id: str, owner: str, mpack_hex: str, size: int) -> bool:
        """Add one ingested pack to the repository's and the owner's bytes, once: False when
        it was counted before or the repository is gone (a deleted one counts nothing)."""
        try:
            self.table.transact(
                [
                    Check(keys.repo_meta(repo_id), Exists("pk")),
                    Put({**keys.stored_pack(repo_id, mpack_hex), "bytes": size}, NEW_ITEM),
                    Change(
                        keys.repo_usage(repo_id),
                        Update(add={"bytes": size, "packs": 1}, set_if_absent={"owner": owner}),
                    ),
                    Change(keys.owner_usage(owner), Update(add={"bytes": size, "packs": 1})),
                ]
            )
        except ConditionFailed:
            return False
        return True

    def counted_packs(self, repo_id: str) -> set[str]:
        """The packs whose bytes are counted. Read before the PACK items when looking for the
        packs collected since: ingestion writes a pack's PACK item before counting it."""
        marks = self.table.query(keys.repo_partition(repo_id), keys.STORED_SK)
        return {m["sk"].removeprefix(keys.STORED_SK) for m in marks}

    def free_pack(self, repo_id: str, mpack_hex: str) -> int:
        """Take a deleted pack's bytes off its repository and owner, once; the bytes freed."""
        mark = self.table.get(keys.stored_pack(repo_id, mpack_hex))
        usage = self.table.get(keys.repo_usage(repo_id))
        if mark is None:
            return 0
        if usage is None:
            # The repository's usage was freed whole, this pack's bytes with it.
            self.table.delete(keys.stored_pack(repo_id, mpack_hex))
            return 0
        size = int(mark["bytes"])
        taken = Update(add={"bytes": -size, "packs": -1})
        try:
            self.table.transact(
                [
                    Delete(keys.stored_pack(repo_id, mpack_hex), Exists("pk")),
                    Change(keys.repo_usage(repo_id), taken, Exists("pk")),
                    Change(keys.owner_usage(str(usage["owner"])), taken),
                ]
            )
        except ConditionFailed:
            # Freed meanwhile, by another run or with the whole repository: look again.
            return self.free_pack(repo_id, mpack_hex)
        return size

    def free_repository(self, repo_id: str) -> int:
        """Take a deleted repository's bytes off its owner and drop its counter, once; the
        bytes freed. Its META item is gone, so nothing can be counted to it any more."""
        while True:
            item = self.table.get(keys.repo_usage(repo_id))
            if item is None:
                return 0
            stored = Stored.of(item)
            unchanged = all_of(Equals("bytes", stored.bytes), Equals("packs", stored.packs))
            try:
                self.table.transact(
                    [
                        Delete(keys.repo_usage(repo_id), unchanged),
                        Change(
                            keys.owner_usage(str(item["owner"])),
                            Update(add={"bytes": -stored.bytes, "packs": -stored.packs}),
                        ),
                    ]
                )
            except ConditionFailed:
                continue  # a pack was freed meanwhile
            return stored.bytes
