"""Manifest deltas: what a snapshot adds, changes and removes relative to its parent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ManifestDelta:
    upsert: dict[str, str]
    remove: list[str]


def diff_manifests(parent: Mapping[str, str], child: Mapping[str, str]) -> ManifestDelta:
    upsert = {p: o for p, o in child.items() if parent.get(p) != o}
    remove = sorted(p for p in parent if p not in child)
    return ManifestDelta(upsert=upsert, remove=remove)


def apply_delta(
    base: Mapping[str, str], upsert: Mapping[str, str], remove: Iterable[str]
) -> dict[str, str]:
    manifest = dict(base)
    for path in remove:
        manifest.pop(path, None)
    manifest.update(upsert)
    return manifest
