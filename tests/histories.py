"""A small history held in memory (a muse_core ``HistorySource`` for ``build_pack``), and commits
written into a repository on disk, shared by the tests of every layer."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from muse_core.commits import CommitRecord, write_commit
from muse_core.ids import blob_id
from muse_core.mpack import build_pack
from muse_core.object_store import write_object
from muse_core.snapshot import compute_snapshot_id
from muse_core.snapshots import SnapshotRecord, write_snapshot

_EPOCH = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)


@dataclass
class History:
    """A small history held in memory; a muse_core ``HistorySource`` for ``build_pack``."""

    tag: str = "x"
    records: dict[str, CommitRecord] = field(default_factory=dict)
    snapshots: dict[str, dict[str, str]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def commits(self, commit_ids: Collection[str]) -> dict[str, CommitRecord]:
        return {c: self.records[c] for c in commit_ids if c in self.records}

    def manifest(self, snapshot_id: str) -> dict[str, str]:
        return dict(self.snapshots[snapshot_id])

    def manifests(self, snapshot_ids: list[str]) -> Iterator[dict[str, str]]:
        return (self.manifest(sid) for sid in snapshot_ids)

    def objects(self, object_ids: list[str]) -> dict[str, bytes]:
        return {oid: self.blobs[oid] for oid in object_ids}

    @property
    def head(self) -> str:
        return self.order[-1]

    def add(self, files: Mapping[str, bytes], parent: str | None = None) -> str:
        """A commit on top of ``parent`` (default: the latest) that writes ``files``."""
        parent = parent if parent is not None else (self.order[-1] if self.order else None)
        base = self.snapshots[self.records[parent].snapshot_id] if parent else {}
        manifest = dict(base)
        for path, data in files.items():
            oid = blob_id(data)
            self.blobs[oid] = data
            manifest[path] = oid
        sid = compute_snapshot_id(manifest)
        self.snapshots[sid] = manifest
        n = len(self.order)
        record = CommitRecord.create(
            snapshot_id=sid,
            message=f"{self.tag} commit {n}",
            committed_at=(_EPOCH + timedelta(seconds=n)).isoformat(),
            parent_ids=(parent,) if parent else (),
        )
        self.records[record.commit_id] = record
        self.order.append(record.commit_id)
        return record.commit_id

    def pack(
        self, heads: Mapping[str, str] | None = None, have: Iterable[str] = ()
    ) -> dict[str, Any]:
        return build_pack(self, dict(heads or {"main": self.head}), have)


def linear_history(commits: int = 3, files: int = 3, tag: str = "x") -> History:
    """``commits`` commits; the first writes ``files`` files, each later one rewrites one."""
    history = History(tag)
    for n in range(commits):
        touched = range(files) if n == 0 else [n % files]
        history.add({f"tracks/{tag}-{i}.mid": f"{tag} {n} {i}\n".encode() * 4 for i in touched})
    return history


def commit(
    root: Path,
    files: dict[str, bytes],
    message: str,
    parents: tuple[str, ...],
    minute: int,
    **extra: Any,
) -> str:
    """A commit written into the repository at ``root`` with exactly ``files``; its id."""
    manifest = {}
    for path, data in files.items():
        write_object(root, blob_id(data), data)
        manifest[path] = blob_id(data)
    snapshot_id = compute_snapshot_id(manifest)
    at = f"2026-03-16T12:{minute:02d}:00+00:00"
    write_snapshot(root, SnapshotRecord(snapshot_id, manifest, at))
    record = CommitRecord.create(
        snapshot_id=snapshot_id, message=message, committed_at=at, parent_ids=parents, **extra
    )
    write_commit(root, record)
    return record.commit_id
