"""The keyword forms MuseHub's seed tests call: ids, records and packs they build."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from muse_core.commits import COMMIT_FIELDS, CommitRecord, read_commit, write_commit
from muse_core.ids import blob_id
from muse_core.mpack import build_mpack
from muse_core.object_store import write_object
from muse_core.refs import write_branch_ref
from muse_core.repo import init_repo
from muse_core.snapshot import compute_commit_id
from muse_core.snapshots import SnapshotRecord, write_snapshot

from .test_vectors import ROOT, SNAP_A, T_ROOT


def test_author_is_accepted_and_never_part_of_the_commit_id() -> None:
    for author in ("", "someone"):
        found = compute_commit_id(
            parent_ids=[],
            snapshot_id=SNAP_A,
            message="init",
            committed_at_iso=T_ROOT,
            author=author,
        )
        assert found == ROOT


def test_keyword_record_keeps_the_datetime_as_the_hashed_string_and_client_defaults() -> None:
    at = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)
    record = CommitRecord(
        commit_id=ROOT,
        branch="trunk",
        snapshot_id=SNAP_A,
        message="init",
        committed_at=at,
        parent_commit_id=None,
        parent2_commit_id=None,
        author="me",
        metadata={"k": "v"},
    )
    assert record.committed_at == T_ROOT and record.expected_id() == ROOT
    fields = record.to_dict()
    assert tuple(fields) == COMMIT_FIELDS
    assert (fields["branch"], fields["author"], fields["format_version"]) == ("trunk", "me", 5)
    assert fields["committed_at"] == T_ROOT and fields["repo_id"] == ""
    with pytest.raises(TypeError):
        CommitRecord(ROOT, SNAP_A, "init", T_ROOT, fields={}, author="twice")


def test_build_mpack_takes_commit_ids_as_tips(tmp_path: Path) -> None:
    init_repo(tmp_path)
    write_object(tmp_path, blob_id(b"hi"), b"hi")
    write_snapshot(tmp_path, SnapshotRecord(SNAP_A, {"a.txt": blob_id(b"hi")}, T_ROOT))
    write_commit(
        tmp_path, CommitRecord.create(snapshot_id=SNAP_A, message="init", committed_at=T_ROOT)
    )
    assert read_commit(tmp_path, ROOT).commit_id == ROOT
    untracked = build_mpack(tmp_path, [ROOT], have=[])
    assert [c["commit_id"] for c in untracked["commits"]] == [ROOT]
    assert untracked["branch_heads"] == {}
    write_branch_ref(tmp_path, "main", ROOT)
    assert build_mpack(tmp_path, [ROOT], have=[])["branch_heads"] == {"main": ROOT}
    assert build_mpack(tmp_path, [ROOT], have=[ROOT])["commits"] == []
    assert build_mpack(tmp_path, ["main"])["branch_heads"] == {"main": ROOT}
