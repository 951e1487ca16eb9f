"""A push too large for one pack, cut into consecutive packs the receiver takes one by one.

The cut runs along the first-parent chain of the pushed head: each commit of that chain, in
turn, brings the wanted commits only it reaches (itself, and what it merges), and a pack ends at
one of these commits. So pack *i* carries every wanted ancestor of its head that no earlier pack
carried, each pack is whole given what the receiver holds after the ones before it, and each
pack's head is a fast-forward of the previous pack's.

A pack is cut where the next commit's share would take it over a budget (``Limits``, the
receiver's): its commits, snapshots, objects, the manifest entries and bytes verification
rebuilds and hashes, and its bytes. Each share is measured from the snapshot deltas the pack is
built from, so nothing is read twice; one share over the budget by itself (a merge of a huge
side history) is sent as its own pack and left to the receiver to judge.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgpack

from muse_core.commits import CommitRecord
from muse_core.limits import DEFAULT_LIMITS, Limits
from muse_core.mpack import (
    MPACK_VERSION,
    LocalHistory,
    local_repo_id,
    snapshot_deltas,
    snapshot_plan,
    topological_order,
    wanted_and_held,
    write_mpack,
)
from muse_core.object_store import object_file

# msgpack's framing of one object ({"object_id": ..., "content": ...}) beyond its bytes, with
# room to spare: the estimate stays above the pack.
_OBJECT_FRAMING = 128


@dataclass(frozen=True)
class PackCost:
    """What a pack costs the receiver, in the units of the ``Limits`` it is judged by."""

    commits: int = 0
    snapshots: int = 0
    objects: int = 0
    rebuilt_entries: int = 0
    hashed_bytes: int = 0
    pack_bytes: int = 0

    def __add__(self, other: PackCost) -> PackCost:
        return PackCost(
            commits=self.commits + other.commits,
            snapshots=self.snapshots + other.snapshots,
            objects=self.objects + other.objects,
            rebuilt_entries=self.rebuilt_entries + other.rebuilt_entries,
            hashed_bytes=self.hashed_bytes + other.hashed_bytes,
            pack_bytes=self.pack_bytes + other.pack_bytes,
        )

    def exceeded(self, limits: Limits) -> str | None:
        """The first limit this cost is over, by name; None when it is within all of them."""
        for spent, limit, name in (
            (self.commits, limits.max_commits, "max_commits"),
            (self.snapshots, limits.max_snapshots, "max_snapshots"),
            (self.objects, limits.max_objects, "max_objects"),
            (self.rebuilt_entries, limits.max_rebuilt_entries, "max_rebuilt_entries"),
            (self.hashed_bytes, limits.max_hashed_manifest_bytes, "max_hashed_manifest_bytes"),
            (self.pack_bytes, limits.max_pack_bytes, "max_pack_bytes"),
        ):
            if spent > limit:
                return name
        return None


@dataclass
class PlannedPack:
    """One pack of a split push: what it carries, its head, and what it costs."""

    head: str
    commits: list[CommitRecord] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    object_ids: list[str] = field(default_factory=list)
    cost: PackCost = field(default_factory=PackCost)

    def take(self, share: PlannedPack) -> None:
        self.head = share.head
        self.commits.extend(share.commits)
        self.snapshots.extend(share.snapshots)
        self.object_ids.extend(share.object_ids)
        self.cost += share.cost


def split_push(
    root: Path, head: str, have: Iterable[str], budget: Limits = DEFAULT_LIMITS
) -> list[PlannedPack]:
    """The packs that bring a receiver holding ``have`` up to ``head``, in the order to send
    them. A receiver that holds ``head`` already gets one empty pack: a branch moved to a
    commit it has."""
    source = LocalHistory(root)
    wanted, held = wanted_and_held(source, [head], have)
    shares = [PlannedPack(tip, commits) for tip, commits in _shares(wanted, head)]
    if not shares:
        return [PlannedPack(head)]
    share_of_snapshot: dict[str, PlannedPack] = {}
    for share in shares:
        for commit in share.commits:
            share_of_snapshot.setdefault(commit.snapshot_id, share)
    order = [commit for share in shares for commit in share.commits]
    plan = snapshot_plan(order, wanted, held)
    # The receiver copies a base that a later delta of the pack still reads.
    reads_left = Counter(base for _, base, _ in plan if base)
    for delta in snapshot_deltas(source, plan):
        share = share_of_snapshot[delta.wire["snapshot_id"]]
        base = delta.wire["parent_snapshot_id"]
        copied = 0
        if base:
            reads_left[base] -= 1
            copied = delta.base_entries if reads_left[base] else 0
        share.snapshots.append(delta.wire)
        share.object_ids.extend(delta.new_objects)
        share.cost += PackCost(
            snapshots=1,
            objects=len(delta.new_objects),
            rebuilt_entries=len(delta.wire["delta_upsert"])
            + len(delta.wire["delta_remove"])
            + copied,
            hashed_bytes=delta.payload_bytes,
            pack_bytes=_encoded(delta.wire) + _object_bytes(root, delta.new_objects),
        )
    packs: list[PlannedPack] = []
    for share in shares:
        share.cost += PackCost(
            commits=len(share.commits),
            pack_bytes=sum(_encoded(c.to_dict()) for c in share.commits),
        )
        if packs and (packs[-1].cost + share.cost).exceeded(budget) is None:
            packs[-1].take(share)
        else:
            packs.append(share)
    return packs


def _shares(wanted: dict[str, CommitRecord], head: str) -> list[tuple[str, list[CommitRecord]]]:
    """Each wanted commit of ``head``'s first-parent chain, oldest first, with the wanted
    commits it reaches that no earlier one of the chain does, parents first."""
    chain: list[str] = []
    tip: str | None = head
    while tip is not None and tip in wanted:
        chain.append(tip)
        tip = wanted[tip].parent_commit_id
    taken: set[str] = set()
    shares: list[tuple[str, list[CommitRecord]]] = []
    for tip in reversed(chain):
        reached: dict[str, CommitRecord] = {}
        stack = [tip]
        while stack:
            commit_id = stack.pop()
            if commit_id in reached or commit_id in taken or commit_id not in wanted:
                continue
            reached[commit_id] = wanted[commit_id]
            stack.extend(wanted[commit_id].parent_ids)
        taken.update(reached)
        shares.append((tip, topological_order(reached)))
    return shares


def _encoded(record: dict[str, Any]) -> int:
    return len(msgpack.packb(record, use_bin_type=True))


def _object_bytes(root: Path, object_ids: list[str]) -> int:
    return sum(os.stat(object_file(root, o)).st_size + _OBJECT_FRAMING for o in object_ids)


def write_planned(root: Path, branch: str, planned: PlannedPack, out: IO[bytes]) -> dict[str, Any]:
    """The pack that moves ``branch`` to ``planned.head``, written to ``out`` as
    ``build_mpack`` writes one, and returned without its objects' contents."""
    pack: dict[str, Any] = {
        "mpack_version": MPACK_VERSION,
        "repo_id": local_repo_id(root),
        "branch_heads": {branch: planned.head},
        "commits": [c.to_dict() for c in planned.commits],
        "snapshots": planned.snapshots,
    }
    write_mpack(root, pack, planned.object_ids, out)
    return pack
