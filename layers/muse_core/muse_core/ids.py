"""Identifiers: object ids and the shape every id must have."""

from __future__ import annotations

import hashlib
import re

from muse_core.errors import MuseError, describe

ID_PATTERN = re.compile(r"[0-9a-f]{64}")
MPACK_KEY_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")


def blob_id(data: bytes) -> str:
    """The object id of raw file bytes: sha256 with no header (unlike git)."""
    return hashlib.sha256(data).hexdigest()


def is_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def require_id(value: object, what: str) -> str:
    if not is_id(value):
        raise MuseError(
            "invalid_id", f"{what} is not a 64-character lowercase hex id", describe(value)
        )
    assert isinstance(value, str)
    return value


def require_mpack_key(value: object) -> str:
    if not isinstance(value, str) or MPACK_KEY_PATTERN.fullmatch(value) is None:
        raise MuseError(
            "invalid_id", "mpack key must be 'sha256:' + 64 lowercase hex", describe(value)
        )
    return value
