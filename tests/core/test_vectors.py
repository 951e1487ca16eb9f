"""The test vectors of muse-repository-format.md, reproduced through the public API."""

from __future__ import annotations

import hashlib

import pytest

from muse_core.commits import CommitRecord
from muse_core.ids import blob_id, is_id
from muse_core.mpack import mpack_key
from muse_core.snapshot import compute_commit_id, compute_snapshot_id, manifest_payload

HI = "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SNAP_A = "89f50b815616c5f8ca3e992480a7bff0b605691550a1efa5d042d6f9399d9789"
SNAP_AB = "56cba6895b132e9c6c8588efe90ce0d213d2216cef942388a0a752301a2d0d4e"
ROOT = "99c229c8094486cfdb3ffa8dd1c51602b90969b613b47c1d910ae0fe32f745d1"
CHILD = "17b5878a9ddea34666c3bcca08bc38c88494d2ace672f466903702c35fc8d0f0"
MERGE = "57f2697fd182d25fb71cf48a6554d03ab98642363efb1c30d35808c2371de2bb"
T_ROOT = "2026-03-16T12:00:00+00:00"
T_CHILD = "2026-03-16T12:01:00+00:00"


def test_object_ids() -> None:
    assert blob_id(b"hi") == HI
    assert blob_id(b"yo") == hashlib.sha256(b"yo").hexdigest()
    assert blob_id(b"") == EMPTY
    for oid in (HI, EMPTY, blob_id(b"yo")):
        assert is_id(oid)


def test_snapshot_ids() -> None:
    assert compute_snapshot_id({"a.txt": blob_id(b"hi")}) == SNAP_A
    assert compute_snapshot_id({"a.txt": blob_id(b"hi"), "b.txt": blob_id(b"yo")}) == SNAP_AB
    # Insertion order of the manifest does not matter: entries are sorted.
    assert compute_snapshot_id({"b.txt": blob_id(b"yo"), "a.txt": blob_id(b"hi")}) == SNAP_AB


def test_empty_manifest() -> None:
    assert manifest_payload({}) == b""
    assert compute_snapshot_id({}) == EMPTY


def test_root_commit() -> None:
    assert compute_commit_id((), SNAP_A, "init", T_ROOT) == ROOT
    record = CommitRecord.create(snapshot_id=SNAP_A, message="init", committed_at=T_ROOT)
    assert record.commit_id == ROOT
    assert record.parent_commit_id is None and record.parent2_commit_id is None
    assert record.expected_id() == ROOT


def test_child_commit() -> None:
    assert compute_commit_id((ROOT,), SNAP_AB, "second", T_CHILD) == CHILD
    record = CommitRecord.create(
        snapshot_id=SNAP_AB, message="second", committed_at=T_CHILD, parent_ids=(ROOT,)
    )
    assert record.commit_id == CHILD
    assert record.parent_commit_id == ROOT


@pytest.mark.parametrize("parents", [(ROOT, CHILD), (CHILD, ROOT)])
def test_merge_commit_parents_in_either_order(parents: tuple[str, str]) -> None:
    assert compute_commit_id(parents, SNAP_AB, "merge", T_CHILD) == MERGE
    record = CommitRecord.create(
        snapshot_id=SNAP_AB, message="merge", committed_at=T_CHILD, parent_ids=parents
    )
    assert record.commit_id == MERGE
    assert (record.parent_commit_id, record.parent2_commit_id) == parents
    assert record.expected_id() == MERGE


def test_committed_at_is_hashed_verbatim() -> None:
    # The same instant written differently is a different commit: never re-format timestamps.
    same_instant = "2026-03-16T12:00:00.000000+00:00"
    assert compute_commit_id((), SNAP_A, "init", same_instant) != ROOT
    assert compute_commit_id((), SNAP_A, "init", "2026-03-16T12:00:00Z") != ROOT


def test_commit_id_ignores_unhashed_fields() -> None:
    plain = CommitRecord.create(snapshot_id=SNAP_A, message="init", committed_at=T_ROOT)
    decorated = CommitRecord.create(
        snapshot_id=SNAP_A,
        message="init",
        committed_at=T_ROOT,
        repo_id="r",
        branch="dev",
        author="someone",
        metadata={"k": "v"},
        structured_delta={"x": [1, 2]},
        sem_ver_bump="major",
        breaking_changes=["api"],
        agent_id="a",
        model_id="m",
        toolchain_id="t",
        prompt_hash="p",
        signature="s",
        signer_key_id="k",
    )
    assert plain.commit_id == decorated.commit_id == ROOT


def test_mpack_key() -> None:
    assert mpack_key(b"") == "sha256:" + EMPTY
    assert mpack_key(b"hi") == "sha256:" + HI
