"""Fixtures and helpers of the muse_core tests: small repositories written with the real API,
and an in-memory receiver that holds what earlier packs delivered."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import msgpack
import pytest

from muse_core.commits import CommitRecord, write_commit
from muse_core.delta import apply_delta
from muse_core.errors import MuseError
from muse_core.ids import blob_id
from muse_core.limits import DEFAULT_LIMITS, Limits
from muse_core.mpack import build_mpack
from muse_core.object_store import write_object
from muse_core.refs import write_branch_ref
from muse_core.repo import init_repo
from muse_core.snapshot import compute_snapshot_id
from muse_core.snapshots import SnapshotRecord, write_snapshot
from muse_core.verify import EmptyReceiver, ReceiverView, VerifiedMpack, verify_mpack


def commit_tree(
    root: Path,
    files: Mapping[str, bytes],
    *,
    message: str,
    committed_at: str,
    parents: tuple[str, ...] = (),
    branch: str = "main",
    **extra: Any,
) -> CommitRecord:
    """Write the objects, the full-manifest snapshot and the commit of one tree, as the client."""
    manifest: dict[str, str] = {}
    for path, data in files.items():
        oid = blob_id(data)
        write_object(root, oid, data)
        manifest[path] = oid
    sid = compute_snapshot_id(manifest)
    write_snapshot(root, SnapshotRecord(sid, manifest, committed_at))
    record = CommitRecord.create(
        snapshot_id=sid,
        message=message,
        committed_at=committed_at,
        parent_ids=parents,
        branch=branch,
        **extra,
    )
    write_commit(root, record)
    return record


class MemoryReceiver:
    """A ``ReceiverView`` holding, in memory, everything earlier verified packs delivered."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.manifests: dict[str, dict[str, str]] = {}
        self.commits: dict[str, CommitRecord] = {}
        self.manifest_requests: list[str] = []

    def known_objects(self, object_ids: Collection[str]) -> set[str]:
        return {o for o in object_ids if o in self.objects}

    def known_snapshots(self, snapshot_ids: Collection[str]) -> set[str]:
        return {s for s in snapshot_ids if s in self.manifests}

    def known_commits(self, commit_ids: Collection[str]) -> set[str]:
        return {c for c in commit_ids if c in self.commits}

    def snapshot_manifest(self, snapshot_id: str) -> dict[str, str] | None:
        self.manifest_requests.append(snapshot_id)
        found = self.manifests.get(snapshot_id)
        return dict(found) if found is not None else None

    def absorb(self, verified: VerifiedMpack, data: bytes) -> None:
        """Store what a verified pack carries, rebuilding each snapshot from its delta."""
        for entry in verified.objects:
            self.objects[entry.object_id] = data[entry.offset : entry.offset + entry.length]
        for snap in verified.snapshots:
            base = self.manifests[snap.parent_snapshot_id] if snap.parent_snapshot_id else {}
            manifest = apply_delta(base, snap.delta_upsert, snap.delta_remove)
            assert compute_snapshot_id(manifest) == snap.snapshot_id
            assert len(manifest) == snap.entry_count
            self.manifests[snap.snapshot_id] = manifest
        for commit in verified.commits:
            self.commits[commit.commit_id] = commit


def encode(pack: Mapping[str, Any]) -> bytes:
    """Real msgpack bytes of a (possibly hand-mutated) pack dict."""
    return msgpack.packb(pack, use_bin_type=True)


def refuse(
    data: bytes,
    code: str,
    item: str | None = None,
    *,
    receiver: ReceiverView | None = None,
    limits: Limits = DEFAULT_LIMITS,
    expected_key: str | None = None,
) -> MuseError:
    """Assert that verification refuses ``data`` with ``code`` and (when given) names ``item``."""
    result: list[VerifiedMpack] = []
    with pytest.raises(MuseError) as info:
        result.append(
            verify_mpack(
                data, receiver or EmptyReceiver(), limits=limits, expected_key=expected_key
            )
        )
    err = info.value
    assert err.code == code, f"expected {code}, got {err.code}: {err.message} ({err.item!r})"
    if item is not None:
        # A long offending value is named by its clipped beginning.
        named = err.item.rstrip("…") if err.item else ""
        assert named and (item in named or item.startswith(named.lstrip("'"))), (
            f"{item!r} not named in {err.item!r}"
        )
    assert err.as_dict()["code"] == code
    assert result == [], "a refused pack returned records for writing"
    return err


T0 = "2026-03-16T12:00:00+00:00"


def make_small_repo(root: Path) -> dict[str, Any]:
    """A small repository: root, a child on main, a side commit on feature/x and a merge.

    Covers an empty file, a deletion, a rename and a non-ASCII path. Returns the commits (in
    writing order), the pack of ``main`` and its encoded bytes.
    """
    init_repo(root, repo_id="11111111-2222-3333-4444-555555555555")
    c1 = commit_tree(
        root,
        {"a.txt": b"hi", "b.txt": b"yo", "empty": b""},
        message="init",
        committed_at=T0,
    )
    c2 = commit_tree(
        root,
        {"a.txt": b"hi again", "docs/readme.md": b"# readme\n", "empty": b""},
        message="second",
        committed_at="2026-03-16T12:01:00+00:00",
        parents=(c1.commit_id,),
    )
    c3 = commit_tree(
        root,
        {"a.txt": b"hi", "b-renamed.txt": b"yo", "empty": b"", "musique/étude.mid": b"\x00\x01"},
        message="side",
        committed_at="2026-03-16T12:02:00.123456+00:00",
        parents=(c1.commit_id,),
        branch="feature/x",
    )
    c4 = commit_tree(
        root,
        {
            "a.txt": b"hi again",
            "docs/readme.md": b"# readme\n",
            "empty": b"",
            "musique/étude.mid": b"\x00\x01",
        },
        message="merge",
        committed_at="2026-03-16T12:03:00+00:00",
        parents=(c2.commit_id, c3.commit_id),
    )
    write_branch_ref(root, "main", c4.commit_id)
    write_branch_ref(root, "feature/x", c3.commit_id)
    commits = [c1, c2, c3, c4]
    pack = build_mpack(root, ["main"])
    return {"root": root, "commits": commits, "pack": pack, "data": encode(pack)}


@pytest.fixture
def small_repo(tmp_path: Path) -> dict[str, Any]:
    return make_small_repo(tmp_path / "small")
