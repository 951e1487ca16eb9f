"""Property tests: deltas round-trip, and build-then-verify round-trips random histories
written on disk with the muse_core API (merges, deletions, renames, empty files, unicode paths),
both as one pack and as two incremental packs."""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from muse_core.commits import CommitRecord, read_commit
from muse_core.delta import apply_delta, diff_manifests
from muse_core.errors import MuseError
from muse_core.ids import blob_id
from muse_core.mpack import build_mpack, encode_mpack
from muse_core.refs import write_branch_ref
from muse_core.repo import init_repo
from muse_core.snapshot import SortedManifest, compute_snapshot_id, manifest_payload
from muse_core.snapshots import read_snapshot
from muse_core.verify import EmptyReceiver, verify_mpack

from .conftest import MemoryReceiver, commit_tree, make_small_repo

PROPERTY_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SEGMENT = st.text(
    alphabet=st.sampled_from(list("abz09 -_.éüß音楽Ω🎵")), min_size=1, max_size=5
).filter(lambda s: s not in (".", "..") and not s.endswith((".", " ")))
PATH = st.lists(SEGMENT, min_size=1, max_size=3).map("/".join)
CONTENT = st.sampled_from([b"", b"x", b"y", b"\x00\xff", "é".encode()]) | st.binary(max_size=16)
OBJECT_ID = st.sampled_from([blob_id(bytes([i])) for i in range(6)] + [blob_id(b"")])
MANIFEST = st.dictionaries(PATH, OBJECT_ID, max_size=12)
EPOCH = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)


@given(parent=MANIFEST, child=MANIFEST)
@PROPERTY_SETTINGS
def test_diff_then_apply_rebuilds_the_child(parent: dict[str, str], child: dict[str, str]) -> None:
    delta = diff_manifests(parent, child)
    assert apply_delta(parent, delta.upsert, delta.remove) == child
    assert compute_snapshot_id(apply_delta(parent, delta.upsert, delta.remove)) == (
        compute_snapshot_id(child)
    )
    # Minimal: only changed or new entries, only paths that went away, sorted.
    assert all(parent.get(p) != o for p, o in delta.upsert.items())
    assert set(delta.remove) == set(parent) - set(child)
    assert delta.remove == sorted(delta.remove)
    assert not set(delta.remove) & set(delta.upsert)
    same = diff_manifests(child, child)
    assert same.upsert == {} and same.remove == []


@given(manifest=MANIFEST)
@PROPERTY_SETTINGS
def test_delta_from_nothing_is_the_whole_manifest(manifest: dict[str, str]) -> None:
    delta = diff_manifests({}, manifest)
    assert delta.upsert == manifest and delta.remove == []
    back = diff_manifests(manifest, {})
    assert back.upsert == {} and apply_delta(manifest, {}, back.remove) == {}


@given(
    parent=st.dictionaries(PATH, OBJECT_ID, min_size=20, max_size=60),
    changes=st.lists(st.tuples(PATH, OBJECT_ID | st.none()), max_size=6),
    in_place=st.booleans(),
)
@PROPERTY_SETTINGS
@example(parent={f"p{n:02d}": blob_id(b"") for n in range(40)}, changes=[], in_place=True)
def test_a_sorted_manifest_hashes_as_its_manifest_after_any_delta(
    parent: dict[str, str], changes: list[tuple[str, str | None]], in_place: bool
) -> None:
    """Few changes merge into the base's sorted entries; the id is the flat hash all the same."""
    child = dict(parent)
    for path, oid in changes:
        if oid is None:
            child.pop(path, None)
        else:
            child[path] = oid
    delta = diff_manifests(parent, child)
    base = SortedManifest.of(parent)
    assert base.snapshot_id() == compute_snapshot_id(parent)
    rebuilt = base.apply(delta.upsert, delta.remove, in_place=in_place)
    assert rebuilt.manifest == child
    assert rebuilt.paths == sorted(child)
    assert rebuilt.snapshot_id() == compute_snapshot_id(child)
    assert rebuilt.payload_bytes == (len(manifest_payload(child)) + 1 if child else 0)
    if not in_place:
        assert base.manifest == parent and base.snapshot_id() == compute_snapshot_id(parent)


# --- random histories ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    parents: tuple[int, ...]
    ops: tuple[tuple[Any, ...], ...]


OP = st.one_of(
    st.tuples(st.just("add"), PATH, CONTENT),
    st.tuples(st.just("modify"), st.integers(0, 50), CONTENT),
    st.tuples(st.just("delete"), st.integers(0, 50)),
    st.tuples(st.just("rename"), st.integers(0, 50), PATH),
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Step], int]:
    """A DAG of commits (index order is a valid parent-first order) and a side-branch tip."""
    count = draw(st.integers(1, 7))
    steps: list[Step] = []
    for i in range(count):
        parents: tuple[int, ...] = ()
        if i:
            first = draw(st.integers(0, i - 1))
            parents = (first,)
            if i >= 2 and draw(st.booleans()):
                second = draw(st.sampled_from([p for p in range(i) if p != first]))
                parents = (first, second)
        ops = tuple(draw(st.lists(OP, max_size=4)))
        steps.append(Step(parents, ops))
    return steps, draw(st.integers(0, count - 1))


def _apply_ops(files: dict[str, bytes], ops: tuple[tuple[Any, ...], ...]) -> dict[str, bytes]:
    files = dict(files)
    for op in ops:
        names = sorted(files)
        if op[0] == "add":
            files[op[1]] = op[2]
        elif not names:
            continue
        elif op[0] == "modify":
            files[names[op[1] % len(names)]] = op[2]
        elif op[0] == "delete":
            del files[names[op[1] % len(names)]]
        elif op[0] == "rename":
            files[op[2]] = files.pop(names[op[1] % len(names)])
    return files


def _without_clashes(files: dict[str, bytes]) -> dict[str, bytes]:
    """The tree a checkout can hold: a file that is also a directory of another one is dropped."""
    directories = {path.rsplit("/", n)[0] for path in files for n in range(1, path.count("/") + 1)}
    return {path: data for path, data in files.items() if path not in directories}


def write_history(root: Path, steps: list[Step], side: int) -> list[CommitRecord]:
    init_repo(root)
    trees: list[dict[str, bytes]] = []
    records: list[CommitRecord] = []
    for i, step in enumerate(steps):
        base: dict[str, bytes] = {}
        for parent in reversed(step.parents):  # a merge takes the union, first parent wins
            base.update(trees[parent])
        tree = _without_clashes(_apply_ops(base, step.ops))
        record = commit_tree(
            root,
            tree,
            message=f"commit {i}",
            committed_at=(EPOCH + timedelta(seconds=i, microseconds=i * 7)).isoformat(),
            parents=tuple(records[p].commit_id for p in step.parents),
            metadata={"step": str(i)},
        )
        trees.append(tree)
        records.append(record)
    write_branch_ref(root, "main", records[-1].commit_id)
    write_branch_ref(root, "side/ünïcode", records[side].commit_id)
    return records


def ancestors(records: list[CommitRecord], tips: list[str]) -> set[str]:
    by_id = {r.commit_id: r for r in records}
    seen: set[str] = set()
    stack = list(tips)
    while stack:
        cid = stack.pop()
        if cid not in seen:
            seen.add(cid)
            stack.extend(by_id[cid].parent_ids)
    return seen


def assert_receiver_holds(root: Path, receiver: MemoryReceiver, commit_ids: set[str]) -> None:
    for cid in commit_ids:
        assert cid in receiver.commits
        record = read_commit(root, cid)
        assert receiver.commits[cid].to_dict() == record.to_dict()
        manifest = read_snapshot(root, record.snapshot_id).manifest
        assert receiver.manifests[record.snapshot_id] == manifest
        for oid in manifest.values():
            assert blob_id(receiver.objects[oid]) == oid
            assert (root / ".muse/objects" / oid[:2] / oid[2:]).read_bytes() == receiver.objects[
                oid
            ]


# Always exercised, whatever hypothesis draws: a merge, a deletion, a rename, an empty file,
# unicode paths, an unchanged tree and a commit reachable only from the side branch.
KNOWN_HISTORY = (
    [
        Step((), (("add", "a.txt", b"hi"), ("add", "vide", b""), ("add", "音楽/曲.mid", b"\x00"))),
        Step((0,), (("delete", 0), ("add", "b.txt", b"yo"))),
        Step((0,), (("rename", 2, "renamed/é.mid"),)),
        Step((1, 2), (("modify", 1, b""),)),
        Step((3,), ()),
        Step((2,), (("add", "side-only", b"s"),)),
    ],
    5,
)


@given(history=histories())
@example(history=KNOWN_HISTORY)
@PROPERTY_SETTINGS
def test_build_then_verify_round_trips_random_histories(history: tuple[list[Step], int]) -> None:
    steps, side = history
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        records = write_history(root, steps, side)
        pack = build_mpack(root)
        tips = [records[-1].commit_id, records[side].commit_id]
        reachable = ancestors(records, tips)
        assert {c["commit_id"] for c in pack["commits"]} == reachable
        assert all("manifest" not in s for s in pack["snapshots"])
        snapshot_of = {r.commit_id: r.snapshot_id for r in records}
        # Each snapshot is sent once, delta-encoded against the snapshot of the first parent of
        # the first commit that names it (a root's snapshot is sent whole).
        deltas = {s["snapshot_id"]: s for s in pack["snapshots"]}
        assert len(deltas) == len(pack["snapshots"])
        introduced: set[str] = set()
        for commit in pack["commits"]:
            sid = commit["snapshot_id"]
            if sid in introduced:
                continue
            introduced.add(sid)
            parent = commit["parent_commit_id"]
            expected_base = snapshot_of[parent] if parent else None
            assert deltas[sid]["parent_snapshot_id"] == expected_base
        assert introduced == set(deltas)

        data = encode_mpack(pack)
        verified = verify_mpack(data, EmptyReceiver())
        position = {c.commit_id: i for i, c in enumerate(verified.commits)}
        assert set(position) == reachable
        for commit in verified.commits:  # parents before children
            assert all(position[p] < position[commit.commit_id] for p in commit.parent_ids)
        wanted_objects = {
            oid
            for cid in reachable
            for oid in read_snapshot(root, snapshot_of[cid]).manifest.values()
        }
        carried = [e.object_id for e in verified.objects]
        assert len(carried) == len(set(carried))
        assert set(carried) == wanted_objects
        assert verified.branch_heads == {"main": tips[0], "side/ünïcode": tips[1]}

        receiver = MemoryReceiver()
        receiver.absorb(verified, data)
        assert_receiver_holds(root, receiver, reachable)


@given(history=histories(), split=st.integers(0, 100))
@example(history=KNOWN_HISTORY, split=2)
@example(history=KNOWN_HISTORY, split=5)
@PROPERTY_SETTINGS
def test_incremental_packs_verify_against_what_the_receiver_holds(
    history: tuple[list[Step], int], split: int
) -> None:
    steps, side = history
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        records = write_history(root, steps, side)
        old = records[split % len(records)].commit_id
        first = encode_mpack(build_mpack(root, {"main": old}))
        receiver = MemoryReceiver()
        receiver.absorb(verify_mpack(first, EmptyReceiver()), first)
        held = ancestors(records, [old])
        assert set(receiver.commits) == held

        tips = {"main": records[-1].commit_id, "side/ünïcode": records[side].commit_id}
        pack = build_mpack(root, tips, have=[old])
        expected = ancestors(records, list(tips.values())) - held
        assert {c["commit_id"] for c in pack["commits"]} == expected
        data = encode_mpack(pack)
        verified = verify_mpack(data, receiver)
        assert {c.commit_id for c in verified.commits} == expected
        receiver.absorb(verified, data)
        assert_receiver_holds(root, receiver, held | expected)


# --- robustness: damaged bytes never crash the verifier -------------------------------------------


@pytest.fixture(scope="module")
def small_pack_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    data: bytes = make_small_repo(tmp_path_factory.mktemp("fuzz"))["data"]
    return data


def test_damaged_packs_are_refused_or_verified_never_crash(small_pack_bytes: bytes) -> None:
    """Random byte flips: verification either succeeds or raises MuseError, nothing else."""
    rng = random.Random(20261125)
    codes: set[str] = set()
    passed = 0
    for _ in range(1500):
        data = bytearray(small_pack_bytes)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            verify_mpack(bytes(data), EmptyReceiver())
            passed += 1
        except MuseError as err:
            assert err.code and err.message
            codes.add(err.code)
    assert {"malformed_mpack", "object_hash_mismatch"} <= codes
    assert passed < 1500


def test_every_truncation_is_malformed(small_pack_bytes: bytes) -> None:
    for cut in range(len(small_pack_bytes)):
        with pytest.raises(MuseError) as info:
            verify_mpack(small_pack_bytes[:cut], EmptyReceiver())
        assert info.value.code == "malformed_mpack", cut
