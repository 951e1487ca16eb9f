"""Port of MuseHub's ``test_mpack_delta_e2e.py``, client half, as that test writes it (only
``muse.core.`` renamed to ``muse_core.``): records by the keyword ``CommitRecord`` constructor
with a datetime ``committed_at``, ids by ``compute_commit_id(...)`` keywords with ``author``,
packs by ``build_mpack(repo, [head_commit_id], have=[...])``, and paths built from the ``slug``
that ``POST /api/repos`` answers. It pushes a root pack, then a delta pack against it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from muse_cloud_cli.client import MuseCloudClient
from muse_cloud_dev.local_stack import LocalStack
from muse_core.commits import CommitRecord, write_commit
from muse_core.mpack import build_mpack, encode_mpack
from muse_core.object_store import write_object
from muse_core.refs import write_branch_ref
from muse_core.repo import init_repo
from muse_core.snapshot import compute_commit_id, compute_snapshot_id
from muse_core.snapshots import SnapshotRecord, write_snapshot

from .conftest import person, token

START = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)


def _commit(
    repo: Path, files: dict[str, bytes], message: str, parent: str | None, minutes: int
) -> str:
    manifest = {}
    for path, content in files.items():
        object_id = hashlib.sha256(content).hexdigest()
        write_object(repo, object_id, content)
        manifest[path] = object_id
    snapshot_id = compute_snapshot_id(manifest)
    committed_at = START + timedelta(minutes=minutes)
    write_snapshot(repo, SnapshotRecord(snapshot_id, manifest, committed_at.isoformat()))
    commit_id = compute_commit_id(
        parent_ids=[parent] if parent else [],
        snapshot_id=snapshot_id,
        message=message,
        committed_at_iso=committed_at.isoformat(),
        author="seed",
    )
    record = CommitRecord(
        commit_id=commit_id,
        branch="main",
        snapshot_id=snapshot_id,
        message=message,
        committed_at=committed_at,
        parent_commit_id=parent,
        parent2_commit_id=None,
        author="seed",
        metadata={"source": "e2e"},
        structured_delta=None,
        sem_ver_bump="none",
        breaking_changes=[],
        agent_id="",
        model_id="",
        toolchain_id="",
        prompt_hash="",
        signature="",
        signer_key_id="",
    )
    write_commit(repo, record)
    write_branch_ref(repo, "main", commit_id)
    return commit_id


def _push(
    api: str, headers: dict[str, str], owner: str, slug: str, pack: bytes, head: str
) -> dict[str, object]:
    key = "sha256:" + hashlib.sha256(pack).hexdigest()
    presigned = requests.post(
        f"{api}/{owner}/{slug}/push/mpack-presign",
        json={"mpack_key": key, "size_bytes": len(pack), "branch": "main", "head": head},
        headers=headers,
        timeout=30,
    )
    assert presigned.status_code == 200, presigned.text
    upload = presigned.json()
    put = requests.put(upload["upload_url"], data=pack, headers=upload["headers"], timeout=60)
    assert put.status_code == 200, put.text
    unpacked = requests.post(
        f"{api}/{owner}/{slug}/push/unpack-mpack",
        json={"mpack_key": key, "branch": "main", "head": head},
        headers=headers,
        timeout=60,
    )
    assert unpacked.status_code == 200, unpacked.text
    result: dict[str, object] = unpacked.json()
    return result


def test_mpack_delta_round_trip(stack: LocalStack, tmp_path: Path) -> None:
    owner = person(stack, "seed")
    headers = {"Authorization": f"Bearer {token(stack, owner, 'write')}"}
    created = requests.post(
        f"{stack.api_url}/api/repos",
        json={"owner": owner.handle, "name": "delta-e2e", "visibility": "public"},
        headers=headers,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    slug = created.json()["slug"]
    assert slug == "delta-e2e"

    repo = tmp_path / "repo"
    init_repo(repo)
    files = {f"tracks/{i:02d}.mid": f"track {i}".encode() for i in range(20)}
    first = _commit(repo, files, "init", None, 0)
    root = build_mpack(repo, [first], have=[])
    assert root["branch_heads"] == {"main": first}
    result = _push(stack.api_url, headers, owner.handle, slug, encode_mpack(root), first)
    assert result["commits_written"] == 1 and result["objects_written"] == 20

    files["tracks/03.mid"] = b"track 3, remixed"
    second = _commit(repo, files, "remix", first, 1)
    delta = build_mpack(repo, [second], have=[first])
    assert [s["delta_upsert"] for s in delta["snapshots"]] == [
        {"tracks/03.mid": hashlib.sha256(b"track 3, remixed").hexdigest()}
    ]
    assert len(delta["objects"]) == 1
    result = _push(stack.api_url, headers, owner.handle, slug, encode_mpack(delta), second)
    assert result["commits_written"] == 1 and result["previous_head"] == first

    with MuseCloudClient(stack.api_url) as anyone:
        assert anyone.refs(owner.handle, slug)["branch_heads"] == {"main": second}
        stored = anyone.commit(owner.handle, slug, second)
    assert stored["committed_at"] == (START + timedelta(minutes=1)).isoformat()
    assert stored["author"] == "seed" and stored["metadata"] == {"source": "e2e"}
