"""Snapshot records: ``.muse/snapshots/<snapshot_id>.json``, always a full manifest."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from muse_core.ids import require_id
from muse_core.paths import muse_dir

# json's own escaper (its C implementation), as json.dumps uses it with ensure_ascii.
_quoted = json.encoder.encode_basestring_ascii
_ITEM_SEPARATOR = ",\n    "
_MANIFEST_SEPARATORS = (_ITEM_SEPARATOR, ": ")


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
    items = json.dumps(manifest, separators=_MANIFEST_SEPARATORS)[1:-1] if manifest else ""
    return _snapshot_text(snapshot_id, items, created_at)


def _snapshot_text(snapshot_id: str, items: str, created_at: str) -> str:
    body = f"{{\n    {items}\n  }}" if items else "{}"
    return (
        f'{{\n  "snapshot_id": {_quoted(snapshot_id)},\n  "manifest": {body},\n'
        f'  "created_at": {_quoted(created_at)}\n}}\n'
    )


class SnapshotChainWriter:
    """Writes snapshots that arrive as deltas on their bases, each base before its deltas, as a
    clone or a fetch receives them. A chain's manifests share all but a few entries, so the
    previous snapshot's entries are kept as encoded JSON items and only a delta's are encoded:
    the file is ``write_snapshot``'s, byte for byte, with the entries in ``apply_delta``'s order.
    (Encoding each whole manifest was most of the time of writing a seed clone's snapshots.)"""

    def __init__(self, root: Path | str) -> None:
        self._root = root
        self._directory = os.path.join(muse_dir(root), "snapshots")
        os.makedirs(self._directory, exist_ok=True)
        self._previous: str | None = None
        self._items: dict[str, str] = {}

    def write(
        self,
        snapshot_id: str,
        base_id: str | None,
        upsert: dict[str, str],
        remove: Iterable[str],
        created_at: str,
    ) -> None:
        require_id(snapshot_id, "snapshot id")
        if base_id is None:
            items: dict[str, str] = {}
        elif base_id == self._previous:
            items = self._items
        else:
            items = _encoded_items(read_snapshot(self._root, base_id).manifest)
        # Changed below, the items stand for no written snapshot until this one is written.
        self._previous, self._items = None, items
        for path in remove:
            items.pop(path, None)
        items.update(_encoded_items(upsert))
        text = _snapshot_text(
            snapshot_id,
            _ITEM_SEPARATOR.join(items.values()),
            created_at or datetime.now(UTC).isoformat(),
        )
        path = os.path.join(self._directory, f"{snapshot_id}.json")
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
        self._previous = snapshot_id


def _encoded_items(manifest: dict[str, str]) -> dict[str, str]:
    return {path: f"{_quoted(path)}: {_quoted(oid)}" for path, oid in manifest.items()}


def read_snapshot(root: Path | str, snapshot_id: str) -> SnapshotRecord:
    data = json.loads(snapshot_path(root, snapshot_id).read_text(encoding="utf-8"))
    return SnapshotRecord(
        snapshot_id=data["snapshot_id"],
        manifest=dict(data.get("manifest") or {}),
        created_at=data.get("created_at", ""),
    )


def has_snapshot(root: Path | str, snapshot_id: str) -> bool:
    return snapshot_path(root, snapshot_id).is_file()
