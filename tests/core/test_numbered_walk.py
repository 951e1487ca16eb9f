"""A history that knows its generation numbers finds what a fetch lacks without walking every
held commit, and packs exactly what the full walk packs."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from histories import History
from hypothesis import given, settings
from hypothesis import strategies as st

from muse_core.commits import CommitRecord
from muse_core.ids import blob_id
from muse_core.mpack import NumberedHistory, build_pack
from muse_core.snapshot import compute_snapshot_id
from muse_core.verify import EmptyReceiver, verify_mpack

from .conftest import MemoryReceiver, encode

EPOCH = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)


class Dag(History):
    """Commits with any parents, each adding a file of its own (so no two snapshots match)."""

    def __init__(self) -> None:
        super().__init__("dag")
        self.generations: dict[str, int] = {}
        self.read: list[str] = []

    def grow(self, parents: tuple[str, ...], files: dict[str, bytes]) -> str:
        manifest = dict(self.snapshots[self.records[parents[0]].snapshot_id]) if parents else {}
        for parent in parents[1:]:
            manifest.update(self.snapshots[self.records[parent].snapshot_id])
        for path, data in files.items():
            self.blobs[blob_id(data)] = data
            manifest[path] = blob_id(data)
        sid = compute_snapshot_id(manifest)
        self.snapshots[sid] = manifest
        record = CommitRecord.create(
            snapshot_id=sid,
            message=f"commit {len(self.order)}",
            committed_at=(EPOCH + timedelta(seconds=len(self.order))).isoformat(),
            parent_ids=parents,
        )
        self.records[record.commit_id] = record
        self.order.append(record.commit_id)
        self.generations[record.commit_id] = 1 + max(
            (self.generations[p] for p in parents), default=0
        )
        return record.commit_id

    def commits(self, commit_ids: Collection[str]) -> dict[str, CommitRecord]:
        self.read.extend(commit_ids)
        return super().commits(commit_ids)


class NumberedDag(Dag):
    def generation(self, commit_id: str) -> int:
        return self.generations[commit_id]


def _grow(dag: Dag, shape: list[tuple[int, int]]) -> None:
    """Each step: a root, or a child of one earlier commit, or a merge of two."""
    for n, (first, second) in enumerate(shape):
        parents: tuple[str, ...] = ()
        if dag.order and first >= 0:
            parents = (dag.order[first % len(dag.order)],)
            other = dag.order[second % len(dag.order)] if second >= 0 else None
            if other is not None and other not in parents:
                parents += (other,)
        dag.grow(parents, {f"c{n}.mid": f"{n}".encode(), "shared.mid": f"{n % 3}".encode()})


STEPS = st.lists(st.tuples(st.integers(-1, 40), st.integers(-3, 40)), min_size=1, max_size=25)
PICKS = st.lists(st.integers(0, 40), max_size=4)


@settings(max_examples=150, deadline=None)
@given(shape=STEPS, heads=st.lists(st.integers(0, 40), min_size=1, max_size=3), have=PICKS)
def test_the_numbered_walk_packs_what_the_full_walk_packs(
    shape: list[tuple[int, int]], heads: list[int], have: list[int]
) -> None:
    plain, numbered = Dag(), NumberedDag()
    _grow(plain, shape)
    _grow(numbered, shape)
    assert isinstance(numbered, NumberedHistory) and not isinstance(plain, NumberedHistory)
    tips = {f"b{i}": plain.order[h % len(plain.order)] for i, h in enumerate(heads)}
    held = [plain.order[h % len(plain.order)] for h in have] + ["f" * 64]
    assert build_pack(numbered, tips, held) == build_pack(plain, tips, held)


def test_a_fetch_on_a_long_history_reads_only_its_top() -> None:
    dag = NumberedDag()
    _grow(dag, [(-1, -1)] + [(n, -1) for n in range(500)])
    pack = build_pack(dag, {"main": dag.order[-1]}, [dag.order[-2]])
    assert [c["commit_id"] for c in pack["commits"]] == [dag.order[-1]]
    assert set(dag.read) == {dag.order[-1], dag.order[-2]}


def test_a_snapshot_held_below_the_walk_is_sent_again_and_verifies() -> None:
    """A revert to an old tree: its snapshot is held, but older than the walk reaches."""
    dag = NumberedDag()
    root = dag.grow((), {"a.mid": b"a"})
    tip = root
    for n in range(3):
        tip = dag.grow((tip,), {"a.mid": f"{n}".encode()})
    revert = dag.grow((tip,), {"a.mid": b"a"})
    assert dag.records[revert].snapshot_id == dag.records[root].snapshot_id
    pack = build_pack(dag, {"main": revert}, [tip])
    assert [c["commit_id"] for c in pack["commits"]] == [revert]
    assert [s["snapshot_id"] for s in pack["snapshots"]] == [dag.records[root].snapshot_id]
    receiver = MemoryReceiver()
    held = encode(build_pack(dag, {"main": tip}))
    receiver.absorb(verify_mpack(held, EmptyReceiver()), held)
    data = encode(pack)
    verified = verify_mpack(data, receiver)
    receiver.absorb(verified, data)
    assert [c.commit_id for c in verified.commits] == [revert]
