"""The seed workload of the protocol: a long linear history written in the client's format."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from muse_core.commits import CommitRecord, write_commit
from muse_core.ids import blob_id
from muse_core.object_store import write_object
from muse_core.refs import write_branch_ref
from muse_core.repo import init_repo
from muse_core.snapshot import compute_snapshot_id
from muse_core.snapshots import SnapshotRecord, write_snapshot


@dataclass(frozen=True)
class Workload:
    commits: int = 1031
    files: int = 700
    changed_per_commit: int = 5
    blob_bytes: int = 512


SEED = Workload()
_EPOCH = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)


def _blob(commit: int, file: int, size: int) -> bytes:
    stem = f"commit {commit} file {file}\n".encode()
    return (stem * (size // len(stem) + 1))[:size]


def generate_history(
    root: Path, workload: Workload = SEED, *, branch: str = "main", start: int = 0
) -> list[str]:
    """Write ``workload.commits`` commits on ``branch`` (continuing its head when ``start`` > 0).

    Each commit rewrites ``changed_per_commit`` files in rotation, so every snapshot differs from
    its parent by exactly that many entries. Returns the new commit ids, oldest first.
    """
    if start == 0:
        init_repo(root)
    manifest: dict[str, str] = {}
    parent: tuple[str, ...] = ()
    if start > 0:
        from muse_core.commits import read_commit
        from muse_core.refs import read_branch_ref
        from muse_core.snapshots import read_snapshot

        head = read_branch_ref(root, branch)
        assert head is not None
        parent = (head,)
        manifest = dict(read_snapshot(root, read_commit(root, head).snapshot_id).manifest)
    ids: list[str] = []
    for n in range(start, start + workload.commits):
        if n == 0:
            touched = range(workload.files)
        else:
            first = (n * workload.changed_per_commit) % workload.files
            touched = range(first, first + workload.changed_per_commit)
        for i in touched:
            data = _blob(n, i % workload.files, workload.blob_bytes)
            oid = blob_id(data)
            write_object(root, oid, data)
            manifest[f"tracks/part-{i % workload.files:04d}.mid"] = oid
        sid = compute_snapshot_id(manifest)
        at = (_EPOCH + timedelta(seconds=n)).isoformat()
        write_snapshot(root, SnapshotRecord(sid, dict(manifest), at))
        record = CommitRecord.create(
            snapshot_id=sid,
            message=f"commit {n}",
            committed_at=at,
            parent_ids=parent,
            branch=branch,
            sem_ver_bump="patch" if n else "major",
        )
        write_commit(root, record)
        parent = (record.commit_id,)
        ids.append(record.commit_id)
    write_branch_ref(root, branch, parent[0])
    return ids
