"""The seed workload of the protocol: 1,031 commits, 700 files, 5 changed per commit, 512-byte
blobs. Built into a delta mpack, verified, then extended and sent incrementally."""

from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pytest

from muse_cloud_cli.workload import SEED, Workload, generate_history
from muse_core.commits import read_commit
from muse_core.errors import MuseError
from muse_core.mpack import build_mpack, encode_mpack, mpack_key
from muse_core.refs import read_branch_ref
from muse_core.snapshots import read_snapshot
from muse_core.verify import EmptyReceiver, VerifiedMpack, verify_mpack

from .conftest import MemoryReceiver

FULL_MANIFEST_ENTRY_BYTES = 80


@dataclass(frozen=True)
class Seed:
    root: Path
    ids: list[str]
    pack: dict[str, Any]
    data: bytes
    verified: VerifiedMpack


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    root = tmp_path_factory.mktemp("seed")
    ids = generate_history(root, SEED)
    pack = build_mpack(root, ["main"])
    data = encode_mpack(pack)
    return Seed(root, ids, pack, data, verify_mpack(data, EmptyReceiver()))


def test_workload_parameters() -> None:
    assert Workload(commits=1031, files=700, changed_per_commit=5, blob_bytes=512) == SEED


def test_seed_pack_shape(seed: Seed) -> None:
    pack = seed.pack
    assert pack["mpack_version"] == 1
    assert pack["branch_heads"] == {"main": seed.ids[-1]}
    commits = pack["commits"]
    snapshots = pack["snapshots"]
    assert isinstance(commits, list) and isinstance(snapshots, list)
    assert len(commits) == 1031
    assert len(snapshots) == 1031
    assert [c["commit_id"] for c in commits] == seed.ids  # parents before children


def test_seed_snapshots_are_deltas(seed: Seed) -> None:
    snapshots = seed.pack["snapshots"]
    assert isinstance(snapshots, list)
    first = snapshots[0]
    assert first["parent_snapshot_id"] is None
    assert first["delta_remove"] == []
    root_commit = read_commit(seed.root, seed.ids[0])
    assert first["snapshot_id"] == root_commit.snapshot_id
    assert first["delta_upsert"] == read_snapshot(seed.root, root_commit.snapshot_id).manifest
    assert len(first["delta_upsert"]) == 700
    for previous, snap in itertools.pairwise(snapshots):
        assert "manifest" not in snap
        assert snap["parent_snapshot_id"] == previous["snapshot_id"]
        assert len(snap["delta_upsert"]) <= 10
        assert len(snap["delta_upsert"]) == 5
        assert snap["delta_remove"] == []
    assert all("manifest" not in s for s in snapshots)


def test_seed_snapshot_list_is_small(seed: Seed) -> None:
    packed = len(msgpack.packb(seed.pack["snapshots"], use_bin_type=True))
    full_estimate = 1031 * 700 * FULL_MANIFEST_ENTRY_BYTES
    assert packed < 0.05 * full_estimate, (packed, full_estimate)


def test_seed_pack_verifies(seed: Seed) -> None:
    verified = seed.verified
    assert verified.key == mpack_key(seed.data)
    assert verified.size == len(seed.data)
    assert len(verified.commits) == 1031
    assert len(verified.snapshots) == 1031
    assert len(verified.objects) == 700 + 1030 * 5 == 5850
    assert verified.branch_heads == {"main": seed.ids[-1]}
    assert [c.commit_id for c in verified.commits] == seed.ids
    assert all(s.entry_count == 700 for s in verified.snapshots)
    assert all(e.length == 512 for e in verified.objects)
    # The expected key of the exact bytes is accepted too.
    assert verify_mpack(seed.data, EmptyReceiver(), expected_key=mpack_key(seed.data)).key


def test_seed_pack_rebuilds_every_snapshot(seed: Seed) -> None:
    receiver = MemoryReceiver()
    receiver.absorb(seed.verified, seed.data)
    head = read_commit(seed.root, seed.ids[-1])
    assert (
        receiver.manifests[head.snapshot_id] == read_snapshot(seed.root, head.snapshot_id).manifest
    )
    for oid, content in list(receiver.objects.items())[:50]:
        assert (seed.root / ".muse/objects" / oid[:2] / oid[2:]).read_bytes() == content


def test_incremental_pack(seed: Seed, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(seed.root, root)
    old_head = seed.ids[-1]
    assert read_branch_ref(root, "main") == old_head
    new_ids = generate_history(root, Workload(commits=3), start=1031)
    assert len(new_ids) == 3
    assert read_branch_ref(root, "main") == new_ids[-1]

    pack = build_mpack(root, ["main"], have=[old_head])
    assert [c["commit_id"] for c in pack["commits"]] == new_ids
    assert len(pack["snapshots"]) == 3
    assert len(pack["objects"]) == 15
    old_sid = read_commit(root, old_head).snapshot_id
    assert pack["snapshots"][0]["parent_snapshot_id"] == old_sid
    assert all(len(s["delta_upsert"]) == 5 for s in pack["snapshots"])
    assert pack["commits"][0]["parent_commit_id"] == old_head

    data = encode_mpack(pack)
    # Against a receiver that holds nothing, the delta base is unknown.
    with pytest.raises(MuseError) as info:
        verify_mpack(data, EmptyReceiver())
    assert info.value.code == "unknown_delta_base"
    assert info.value.item == old_sid

    receiver = MemoryReceiver()
    receiver.absorb(seed.verified, seed.data)
    verified = verify_mpack(data, receiver, expected_key=mpack_key(data))
    assert [c.commit_id for c in verified.commits] == new_ids
    assert len(verified.snapshots) == 3
    assert len(verified.objects) == 15
    assert verified.branch_heads == {"main": new_ids[-1]}
    # Only the base of the first delta was rebuilt from what the receiver holds.
    assert receiver.manifest_requests == [old_sid]
    receiver.absorb(verified, data)
    new_head = read_commit(root, new_ids[-1])
    assert (
        receiver.manifests[new_head.snapshot_id]
        == read_snapshot(root, new_head.snapshot_id).manifest
    )
    assert len(receiver.commits) == 1034
    assert len(receiver.objects) == 5865
