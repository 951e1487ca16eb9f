"""Content-addressed objects under ``.muse/objects/<id[:2]>/<id[2:]>``."""

from __future__ import annotations

import os
from pathlib import Path

from muse_core.ids import require_id
from muse_core.paths import muse_dir


def object_path(root: Path | str, object_id: str) -> Path:
    require_id(object_id, "object id")
    return muse_dir(root) / "objects" / object_id[:2] / object_id[2:]


def has_object(root: Path | str, object_id: str) -> bool:
    return object_path(root, object_id).is_file()


def write_object(root: Path | str, object_id: str, data: bytes) -> Path:
    """Write an object once; an existing object is never rewritten (ids are content hashes)."""
    path = object_path(root, object_id)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def read_object(root: Path | str, object_id: str) -> bytes:
    return object_path(root, object_id).read_bytes()
