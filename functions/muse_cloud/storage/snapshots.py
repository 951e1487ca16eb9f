"""Snapshots stored as deltas against their parent, with periodic full checkpoints.

Each delta item lists its chain: the snapshot ids from its base back to the nearest checkpoint.
Rebuilding any snapshot reads the item, then its chain in one BatchGetItem (at most
``CHAIN_LIMIT`` deltas and one checkpoint), whatever the length of the history. A checkpoint
whose manifest is too large for a 400 KB item lives in S3 instead.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence

import msgpack

from muse_cloud.domain.errors import ServiceError
from muse_cloud.storage import keys, layout
from muse_cloud.storage.backend import Item, Table
from muse_cloud.storage.dynamo import pack_ids, unpack_ids
from muse_cloud.storage.values import LargeValues
from muse_core.delta import apply_delta
from muse_core.snapshot import SortedManifest
from muse_core.verify import VerifiedSnapshot

CHAIN_LIMIT = 50
_SORTED_KEPT = 2
DELTA_ENTRY_LIMIT = 2_000


def _snapshot_id(item: Item) -> str:
    return str(item["pk"]).rsplit("#", 1)[1]


class SnapshotStore:
    def __init__(self, table: Table, values: LargeValues) -> None:
        self.table = table
        self.values = values
        # The last rebuilt manifests with their sorted entries, used for a caller's base only
        # when it is the very dict handed out (callers read manifests, never change them).
        self._sorted: OrderedDict[tuple[str, str], SortedManifest] = OrderedDict()

    def chains(self, repo_id: str, snapshot_ids: Collection[str]) -> dict[str, tuple[str, ...]]:
        items = self.table.get_many((keys.snapshot(repo_id, s) for s in snapshot_ids), ("chain",))
        return {_snapshot_id(i): self.chain_of(i) for i in items}

    def known(self, repo_id: str, snapshot_ids: Collection[str]) -> set[str]:
        return set(self.chains(repo_id, snapshot_ids))

    def put_many(
        self,
        repo_id: str,
        snapshots: Sequence[VerifiedSnapshot],
        chains: Mapping[str, tuple[str, ...]],
    ) -> None:
        """Write snapshots not yet held."""
        items = []
        for snap in snapshots:
            sid = snap.snapshot_id
            chain = chains[sid]
            item: Item = {**keys.snapshot(repo_id, sid), "entries": snap.entry_count}
            if chain:
                # Its delta base is the chain's first snapshot: no attribute of its own.
                item["chain"] = pack_ids(chain)
                delta = msgpack.packb([snap.delta_upsert, snap.delta_remove], use_bin_type=True)
                key = layout.large_value(repo_id, "deltas", sid)
                self.values.store(item, "delta", delta, key)
            else:
                assert snap.manifest is not None, "checkpoints are verified with their manifest"
                body = msgpack.packb(snap.manifest, use_bin_type=True)
                key = layout.large_value(repo_id, "checkpoints", sid)
                self.values.store(item, "manifest", body, key)
            items.append(item)
        # In order, bases before the deltas on them: a snapshot that can be read can be rebuilt.
        self.table.put_many(items, ordered=True)

    def manifest(
        self,
        repo_id: str,
        snapshot_id: str,
        bases: Mapping[str, Mapping[str, str]] | None = None,
    ) -> dict[str, str] | None:
        """The snapshot's full manifest, rebuilt from its chain and checked against its id."""
        head = self.table.get(keys.snapshot(repo_id, snapshot_id))
        return None if head is None else self.rebuild(repo_id, snapshot_id, head, bases)

    def items(self, repo_id: str, snapshot_ids: Collection[str]) -> dict[str, Item]:
        """The stored items of many snapshots, read in batches, for ``rebuild``."""
        found = self.table.get_many(keys.snapshot(repo_id, s) for s in snapshot_ids)
        return {_snapshot_id(i): i for i in found}

    def rebuild(
        self,
        repo_id: str,
        snapshot_id: str,
        head: Item,
        bases: Mapping[str, Mapping[str, str]] | None = None,
    ) -> dict[str, str]:
        """The manifest of a stored item. ``bases`` are manifests the caller already rebuilt:
        when the item's delta base is among them, no other item is read (a clone walks history
        oldest first, so its previous snapshot is usually the base)."""
        known = self._sorted.get((repo_id, snapshot_id))
        if known is not None:
            # Checked against its id when remembered, and a stored item was read just now.
            return known.manifest
        chain = self.chain_of(head)
        parent = chain[0] if chain else None
        if bases and parent is not None and parent in bases:
            sorted_base = self._sorted.get((repo_id, parent))
            if sorted_base is not None and sorted_base.manifest is bases[parent]:
                rebuilt = sorted_base.apply(*self._delta_of(head))
                return self._checked(repo_id, snapshot_id, rebuilt)
            manifest = apply_delta(bases[parent], *self._delta_of(head))
            return self._checked(repo_id, snapshot_id, SortedManifest.of(manifest))
        fetched = self.items(repo_id, chain) if chain else {}
        items = [head]
        for sid in chain:
            item = fetched.get(sid)
            if item is None:
                raise ServiceError("corrupt_snapshot", "a snapshot's delta chain is broken", sid)
            items.append(item)
        manifest = self._checkpoint_manifest(items[-1])
        for item in reversed(items[:-1]):
            manifest = apply_delta(manifest, *self._delta_of(item))
        return self._checked(repo_id, snapshot_id, SortedManifest.of(manifest))

    def _checked(self, repo_id: str, snapshot_id: str, rebuilt: SortedManifest) -> dict[str, str]:
        """The rebuilt manifest once it hashes to its id, remembered with its sorted entries:
        the next snapshot of a walk oldest first is a delta on it, hashed without a re-sort."""
        if rebuilt.snapshot_id() != snapshot_id:
            raise ServiceError(
                "corrupt_snapshot", "rebuilt manifest does not hash to its id", snapshot_id
            )
        self.remember(repo_id, snapshot_id, rebuilt)
        return rebuilt.manifest

    def remember(self, repo_id: str, snapshot_id: str, manifest: SortedManifest) -> None:
        """Keep a manifest known to hash to ``snapshot_id``, as written by ingestion: the next
        push of a branch is a delta on its last snapshot, rebuilt then without a read. Only a
        caller that has just read the snapshot's item (so it is still stored) gets it back."""
        self._sorted[(repo_id, snapshot_id)] = manifest
        self._sorted.move_to_end((repo_id, snapshot_id))
        while len(self._sorted) > _SORTED_KEPT:
            self._sorted.popitem(last=False)

    def objects_named(self, item: Item) -> set[str]:
        """The objects a stored snapshot names itself: its checkpoint's manifest, or what its
        delta upserts. Over a snapshot and its chain, these hold every object of its manifest
        (and those an entry of the chain named before a later delta replaced it)."""
        if "manifest" in item or "manifest_key" in item:
            return set(self._checkpoint_manifest(item).values())
        upsert, _ = self._delta_of(item)
        return set(upsert.values())

    @staticmethod
    def chain_of(item: Item) -> tuple[str, ...]:
        """The snapshots a stored delta is rebuilt from, its base first; none for a checkpoint."""
        return unpack_ids(item.get("chain"))

    def _checkpoint_manifest(self, item: Item) -> dict[str, str]:
        if "manifest" not in item and "manifest_key" not in item:
            raise ServiceError("corrupt_snapshot", "chain does not end at a checkpoint", item["pk"])
        manifest: dict[str, str] = msgpack.unpackb(self.values.load(item, "manifest"), raw=False)
        return manifest

    def _delta_of(self, item: Item) -> tuple[dict[str, str], list[str]]:
        upsert, remove = msgpack.unpackb(self.values.load(item, "delta"), raw=False)
        return upsert, remove
