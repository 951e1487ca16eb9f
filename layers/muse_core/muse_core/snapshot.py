"""Id derivations of snapshots and commits (format document, "Identifiers").

The module names ``snapshot`` (ids) and ``snapshots`` (records on disk) are the Muse client's
own (``muse.core.snapshot``, ``muse.core.snapshots``), which MuseHub's tests import by name.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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


@dataclass
class SortedManifest:
    """A manifest with its entries (``path NUL oid``, encoded) kept in id order, so a
    snapshot's id is hashed from its base's entries with only a delta's changes merged in: no
    re-sort, and no entry built or encoded again for an unchanged path.

    Paths hold no NUL, so entries sort as their paths do, and ``paths[i]`` names ``entries[i]``.
    """

    manifest: dict[str, str]
    paths: list[str]
    entries: list[bytes]

    @classmethod
    def of(cls, manifest: Mapping[str, str]) -> SortedManifest:
        paths = sorted(manifest)
        return cls(dict(manifest), paths, [_entry(path, manifest[path]) for path in paths])

    def snapshot_id(self) -> str:
        return hashlib.sha256(b"\x00".join(self.entries)).hexdigest()

    @property
    def payload_bytes(self) -> int:
        """What hashing costs: the payload's bytes, counting one separator per entry."""
        return sum(map(len, self.entries)) + len(self.entries)

    def apply(
        self, upsert: Mapping[str, str], remove: Iterable[str], *, in_place: bool = False
    ) -> SortedManifest:
        """The manifest with ``remove`` taken out and ``upsert`` set; ``in_place`` reuses this
        one's storage, for a base nothing else will read."""
        target = self if in_place else SortedManifest(dict(self.manifest), [], [])
        manifest = target.manifest
        removed = [path for path in remove if manifest.pop(path, None) is not None]
        manifest.update(upsert)
        changes = len(removed) + len(upsert)
        if changes * _MERGE_FACTOR > len(self.paths):
            # Changes this many cost less as one C-speed sort than as list insertions.
            target.paths = sorted(manifest)
            target.entries = [_entry(path, manifest[path]) for path in target.paths]
            return target
        if not in_place:
            target.paths, target.entries = list(self.paths), list(self.entries)
        paths, entries = target.paths, target.entries
        for path in removed:
            at = bisect.bisect_left(paths, path)
            del paths[at], entries[at]
        for path, oid in upsert.items():
            at = bisect.bisect_left(paths, path)
            if at < len(paths) and paths[at] == path:
                entries[at] = _entry(path, oid)
            else:
                paths.insert(at, path)
                entries.insert(at, _entry(path, oid))
        return target


def _entry(path: str, oid: str) -> bytes:
    return (path + NUL + oid).encode()


# A delta touching more than 1/_MERGE_FACTOR of its base is applied by sorting afresh.
_MERGE_FACTOR = 16
