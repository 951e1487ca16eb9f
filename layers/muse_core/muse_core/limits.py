"""Bounds on what a pack may contain, so a hostile pack cannot exhaust memory or time."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_pack_bytes: int = 4 * 1024 * MIB
    max_object_bytes: int = 100 * MIB
    max_objects: int = 1_000_000
    max_commits: int = 200_000
    max_snapshots: int = 200_000
    max_manifest_entries: int = 1_000_000
    max_string_bytes: int = 1 * MIB
    max_branch_heads: int = 1_000


DEFAULT_LIMITS = Limits()
