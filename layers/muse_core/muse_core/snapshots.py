"""Snapshot records: ``.muse/snapshots/<snapshot_id>.json``, always a full manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from muse_core.ids import require_id
from muse_core.paths import muse_dir

# json's own escaper (its C implementation), as json.dumps uses it with ensure_ascii.
_quoted = json.encoder.encode_basestring_ascii
_MANIFEST_SEPARATORS = (",\n    ", ": ")


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
    path.write_text(snapshot_json(record.snapshot_id, record.manifest, created_at), "utf-8")
    return path


def snapshot_json(snapshot_id: str, manifest: dict[str, str], created_at: str) -> str:
    """``json.dumps(record, indent=2)`` and a newline, byte for byte. ``indent`` makes json
    encode in Python, value by value (0.4 s of a seed clone's 1,031 snapshots); without it,
    json's C encoder writes the manifest, its item separator breaking the line and indenting."""
    if manifest:
        items = json.dumps(manifest, separators=_MANIFEST_SEPARATORS)[1:-1]
        body = f"{{\n    {items}\n  }}"
    else:
        body = "{}"
    return (
        f'{{\n  "snapshot_id": {_quoted(snapshot_id)},\n  "manifest": {body},\n'
        f'  "created_at": {_quoted(created_at)}\n}}\n'
    )


def read_snapshot(root: Path | str, snapshot_id: str) -> SnapshotRecord:
    data = json.loads(snapshot_path(root, snapshot_id).read_text(encoding="utf-8"))
    return SnapshotRecord(
        snapshot_id=data["snapshot_id"],
        manifest=dict(data.get("manifest") or {}),
        created_at=data.get("created_at", ""),
    )


def has_snapshot(root: Path | str, snapshot_id: str) -> bool:
    return snapshot_path(root, snapshot_id).is_file()
