"""Snapshot records: ``.muse/snapshots/<snapshot_id>.json``, always a full manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from muse_core.ids import require_id
from muse_core.paths import muse_dir


@dataclass(frozen=True)
class SnapshotRecord:
    snapshot_id: str
    manifest: dict[str, str]
    created_at: str = field(default="", compare=False)


def snapshot_path(root: Path | str, snapshot_id: str) -> Path:
    require_id(snapshot_id, "snapshot id")
    return muse_dir(root) / "snapshots" / f"{snapshot_id}.json"


def write_snapshot(root: Path | str, record: SnapshotRecord) -> Path:
    path = snapshot_path(root, record.snapshot_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    created_at = record.created_at or datetime.now(UTC).isoformat()
    body = {
        "snapshot_id": record.snapshot_id,
        "manifest": record.manifest,
        "created_at": created_at,
    }
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return path


def read_snapshot(root: Path | str, snapshot_id: str) -> SnapshotRecord:
    data = json.loads(snapshot_path(root, snapshot_id).read_text(encoding="utf-8"))
    return SnapshotRecord(
        snapshot_id=data["snapshot_id"],
        manifest=dict(data.get("manifest") or {}),
        created_at=data.get("created_at", ""),
    )


def has_snapshot(root: Path | str, snapshot_id: str) -> bool:
    return snapshot_path(root, snapshot_id).is_file()
