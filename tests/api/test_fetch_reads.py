"""How a fetch reads objects out of their packs: nearby objects share one ranged GET, distant
ones do not, and no GET brings more than a bounded span into memory."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, cast

from muse_cloud.services.fetch import MAX_SPAN_BYTES, MERGE_GAP_BYTES, StoreHistory
from muse_cloud.storage.pack_index import ObjectLocation
from muse_cloud.storage.stores import Stores
from muse_core.limits import MIB

GIB = 1024 * MIB
Read = tuple[str, int, int]


def _content(loc: ObjectLocation) -> bytes:
    return (loc.object_id.encode() * (loc.length // len(loc.object_id) + 1))[: loc.length]


@dataclass
class _Index:
    locations: dict[str, ObjectLocation]

    def locate_all(self, repo_id: str, object_ids: Collection[str]) -> dict[str, ObjectLocation]:
        return {o: self.locations[o] for o in object_ids if o in self.locations}


@dataclass
class _Stores:
    pack_index: _Index
    packs: _Packs


@dataclass
class _Packs:
    """Ranged GETs of packs holding only the indexed objects (zeros in between)."""

    locations: dict[str, ObjectLocation]
    reads: list[Read] = field(default_factory=list)

    def read_range(self, s3_key: str, offset: int, length: int) -> bytes:
        self.reads.append((s3_key, offset, length))
        # What the function could not hold in memory (before a test's 4 GiB read ever runs).
        assert length <= 2 * MAX_SPAN_BYTES, f"one GET of {length} bytes"
        data = bytearray(length)
        for loc in self.locations.values():
            if loc.s3_key == s3_key and offset <= loc.offset < offset + length:
                data[loc.offset - offset : loc.offset - offset + loc.length] = _content(loc)
        return bytes(data)


def _reads(*placed: tuple[str, str, int, int]) -> list[Read]:
    """The GETs that reading every placed ``(object_id, pack, offset, length)`` makes."""
    locations = {
        oid: ObjectLocation(oid, key, offset, length) for oid, key, offset, length in placed
    }
    packs = _Packs(locations)
    history = StoreHistory("repo", cast(Stores, cast(Any, _Stores(_Index(locations), packs))))
    got = history.objects(list(locations))
    assert got == {oid: _content(loc) for oid, loc in locations.items()}
    return sorted(packs.reads)


def test_objects_at_opposite_ends_of_a_large_pack_are_read_apart() -> None:
    reads = _reads(("a", "p", 0, 100), ("b", "p", 4 * GIB - 100, 100))
    assert reads == [("p", 0, 100), ("p", 4 * GIB - 100, 100)]


def test_nearby_objects_share_one_read() -> None:
    reads = _reads(
        ("c", "p", 5000, 10),
        ("a", "p", 0, 100),
        ("b", "p", 100 + MERGE_GAP_BYTES, 50),
        ("d", "q", 7, 3),
    )
    assert reads == [("p", 0, 150 + MERGE_GAP_BYTES), ("q", 7, 3)]


def test_a_gap_just_over_the_limit_splits() -> None:
    reads = _reads(("a", "p", 0, 100), ("b", "p", 101 + MERGE_GAP_BYTES, 50))
    assert reads == [("p", 0, 100), ("p", 101 + MERGE_GAP_BYTES, 50)]


def test_a_run_of_close_objects_is_read_in_bounded_spans() -> None:
    # 200 objects of 512 KiB, 512 KiB apart: 200 MiB of pack, every gap small enough to merge.
    reads = _reads(*[(f"o{n:03}", "p", n * MIB, MIB // 2) for n in range(200)])
    assert all(length <= MAX_SPAN_BYTES for _, _, length in reads)
    assert len(reads) == 4
    spans = [(offset, offset + length) for _, offset, length in reads]
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in pairwise(spans))


def test_one_object_larger_than_a_span_comes_whole() -> None:
    reads = _reads(("a", "p", 0, 10), ("big", "p", 10, MAX_SPAN_BYTES + 1))
    assert reads == [("p", 0, 10), ("p", 10, MAX_SPAN_BYTES + 1)]
