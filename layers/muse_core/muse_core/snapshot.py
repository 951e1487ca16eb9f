"""Id derivations of snapshots and commits (format document, "Identifiers")."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

NUL = "\x00"


def manifest_payload(manifest: Mapping[str, str]) -> bytes:
    return NUL.join(sorted(path + NUL + oid for path, oid in manifest.items())).encode()


def compute_snapshot_id(manifest: Mapping[str, str]) -> str:
    return hashlib.sha256(manifest_payload(manifest)).hexdigest()


def compute_commit_id(
    parent_ids: Iterable[str],
    snapshot_id: str,
    message: str,
    committed_at_iso: str,
    author: str = "",
) -> str:
    """The commit id of the format document. ``author`` is accepted (callers written against
    MuseHub pass it as a keyword) but is not part of the id, so it never changes the result."""
    del author
    payload = NUL.join([NUL.join(sorted(parent_ids)), snapshot_id, message, committed_at_iso])
    return hashlib.sha256(payload.encode()).hexdigest()
