"""Compare two repositories file by file, as the format document names the files: objects,
commit records, snapshot manifests and branch refs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from muse_core.mpack import LocalHistory, reachable_commits
from muse_core.object_store import read_object
from muse_core.paths import muse_dir
from muse_core.refs import list_branches
from muse_core.snapshots import read_snapshot

_SHOWN = 3


@dataclass
class Comparison:
    refs: int = 0
    commits: int = 0
    snapshots: int = 0
    objects: int = 0
    manifest_entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return not self.problems


def _commit_file(root: Path, commit_id: str) -> Any:
    # Parsed, not raw: a record keeps every field, but JSON spacing is not part of the format.
    return json.loads((muse_dir(root) / "commits" / f"{commit_id}.json").read_text("utf-8"))


def stored_ids(root: Path, folder: str) -> set[str]:
    base = muse_dir(root) / folder
    if folder == "objects":
        return {p.parent.name + p.name for p in base.glob("*/*") if p.is_file()}
    return {p.stem for p in base.glob("*.json")}


def compare_repos(source: Path, copy: Path) -> Comparison:
    """Everything ``source``'s branches reach must be in ``copy`` with the same content, and
    ``copy`` must hold nothing else."""
    result = Comparison()
    heads = list_branches(source)
    result.refs = len(heads)
    if list_branches(copy) != heads:
        result.problems.append(f"refs differ: {heads} != {list_branches(copy)}")

    commits = reachable_commits(LocalHistory(source), heads.values())
    snapshot_ids = {c.snapshot_id for c in commits.values()}
    manifests = {sid: read_snapshot(source, sid).manifest for sid in snapshot_ids}
    object_ids = {oid for manifest in manifests.values() for oid in manifest.values()}
    result.manifest_entries = sum(len(manifest) for manifest in manifests.values())
    result.commits, result.snapshots, result.objects = (
        len(commits),
        len(snapshot_ids),
        len(object_ids),
    )

    checks = (
        ("commits", set(commits), lambda i: _commit_file(source, i) == _commit_file(copy, i)),
        (
            "snapshots",
            snapshot_ids,
            lambda i: manifests[i] == read_snapshot(copy, i).manifest,
        ),
        ("objects", object_ids, lambda i: read_object(source, i) == read_object(copy, i)),
    )
    for folder, expected, same in checks:
        stored = stored_ids(copy, folder)
        missing, extra = sorted(expected - stored), sorted(stored - expected)
        if missing:
            result.problems.append(f"{folder} missing from the copy: {missing[:_SHOWN]}")
        if extra:
            result.problems.append(f"{folder} only in the copy: {extra[:_SHOWN]}")
        differing = [i for i in sorted(expected & stored) if not same(i)]
        if differing:
            result.problems.append(f"{folder} with other content: {differing[:_SHOWN]}")
    return result


def check_worktree(root: Path, manifest: dict[str, str]) -> list[str]:
    """Paths of ``manifest`` whose checked-out file is missing or holds other bytes."""
    return [
        path
        for path, oid in sorted(manifest.items())
        if not (root / path).is_file() or (root / path).read_bytes() != read_object(root, oid)
    ]
