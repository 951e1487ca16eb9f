"""Bounds on what a pack may contain, so a hostile pack cannot exhaust memory or time."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    # S3's largest object (an upload in parts).
    max_pack_bytes: int = 5 * 1024 * 1024 * MIB
    max_object_bytes: int = 100 * MIB
    max_objects: int = 1_000_000
    max_commits: int = 200_000
    max_snapshots: int = 200_000
    max_manifest_entries: int = 1_000_000
    max_string_bytes: int = 1 * MIB
    # The server moves every head of a pack in one DynamoDB transaction, capped at 100 actions.
    max_branch_heads: int = 100
    # Manifest entries copied and hashed while rebuilding the snapshots of one pack: a long chain
    # of small deltas over a large manifest costs this much CPU however small the pack is.
    max_rebuilt_entries: int = 50_000_000
    # Manifest bytes hashed while verifying one pack's snapshot ids (a flat hash of each whole
    # manifest, at C speed: about 20 s at this bound), which grows with commits x files.
    max_hashed_manifest_bytes: int = 32 * 1024 * MIB
    # Decoded map and array entries (containers count one each) outside object contents: each
    # must be paid for by this many bytes of the pack read so far, beyond a fixed allowance of
    # ``max_manifest_entries``. A decoded item costs about 60 bytes of memory, so a pack of tiny
    # items (empty arrays, 4-byte strings) cannot grow memory by more than a few times its size.
    pack_bytes_per_decoded_item: int = 16


DEFAULT_LIMITS = Limits()
