"""The push flow as a client runs it, over a real moto server: refs, build, presign, HTTP PUT,
unpack-mpack, refs again; then fetch from scratch and compare with the source."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from muse_cloud_cli.signer import KeyFile, new_identity
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import services
from muse_core.commits import read_commit
from muse_core.ids import blob_id
from muse_core.mpack import build_mpack, decode_mpack, encode_mpack, mpack_key
from muse_core.refs import list_branches
from muse_core.snapshots import read_snapshot
from muse_core.verify import EmptyReceiver, verify_mpack

from .client import call


@pytest.fixture
def admin(server_stack: Provisioned) -> KeyFile:
    key = new_identity("admin", is_admin=True)
    services().identities.ensure_bootstrap_admin(key.public_key)
    return key


def push(
    key: KeyFile, root: Path, slug: str, have: list[str], **extra: object
) -> dict[str, object]:
    data = encode_mpack(build_mpack(root, ["main"], have=have))
    presign = call(
        "POST",
        f"/{slug}/push/mpack-presign",
        {"mpack_key": mpack_key(data), "size_bytes": len(data), **extra},
        key,
    )
    assert presign.status == 200, presign.body
    grant = presign.json()
    put = requests.put(grant["upload_url"], data=data, headers=grant["headers"], timeout=30)
    assert put.status_code == 200
    head = list_branches(root)["main"]
    unpack = call(
        "POST",
        f"/{slug}/push/unpack-mpack",
        {"mpack_key": mpack_key(data), "branch": "main", "head": head, **extra},
        key,
    )
    result: dict[str, object] = {**unpack.json(), "http_status": unpack.status}
    return result


def test_push_then_clone_round_trips(admin: KeyFile, tmp_path: Path) -> None:
    source = tmp_path / "src"
    generate_history(source, Workload(commits=8, files=12, changed_per_commit=2))
    created = call("POST", "/api/repos", {"owner": "admin", "name": "songs"}, admin)
    assert created.status == 201, created.body
    assert call("GET", "/admin/songs/refs").json()["branch_heads"] == {}

    result = push(admin, source, "admin/songs", [])
    assert result["http_status"] == 200, result
    assert result["commits_written"] == 8
    heads = call("GET", "/admin/songs/refs").json()["branch_heads"]
    assert heads == list_branches(source)

    fetched = call("POST", "/admin/songs/fetch/mpack", {"want": [heads["main"]], "have": []})
    assert fetched.status == 200, fetched.body
    grant = fetched.json()
    data = requests.get(grant["download_url"], timeout=30).content
    assert mpack_key(data) == grant["mpack_key"]
    verified = verify_mpack(data, EmptyReceiver())
    assert verified.branch_heads == heads
    pack = decode_mpack(data)
    assert [c["commit_id"] for c in pack["commits"]] == [c.commit_id for c in verified.commits]
    for commit in verified.commits:
        assert commit.to_dict() == read_commit(source, commit.commit_id).to_dict()
        snapshot = call("GET", f"/admin/songs/snapshots/{commit.snapshot_id}").json()
        assert snapshot["manifest"] == read_snapshot(source, commit.snapshot_id).manifest
    for entry in pack["objects"]:
        assert blob_id(entry["content"]) == entry["object_id"]
        one = call("GET", f"/admin/songs/objects/{entry['object_id']}")
        assert one.status == 200 and one.body == entry["content"]


def test_incremental_push_sends_only_new_history(admin: KeyFile, tmp_path: Path) -> None:
    source = tmp_path / "src"
    generate_history(source, Workload(commits=5, files=10, changed_per_commit=2))
    assert call("POST", "/api/repos", {"owner": "admin", "name": "inc"}, admin).status == 201
    first = push(admin, source, "admin/inc", [])
    old_head = list_branches(source)["main"]
    generate_history(source, Workload(commits=2, files=10, changed_per_commit=2), start=5)

    second = push(admin, source, "admin/inc", [old_head])

    assert first["http_status"] == second["http_status"] == 200
    assert second["commits_written"] == 2
    assert second["snapshots_written"] == 2
    assert second["objects_written"] == 4
    assert second["previous_head"] == old_head
    log = call("GET", "/admin/inc/log", query={"limit": "3"}).json()
    assert [c["message"] for c in log["commits"]] == ["commit 6", "commit 5", "commit 4"]
    rest = call("GET", "/admin/inc/log", query={"limit": "10", "cursor": log["next_cursor"]})
    assert [c["message"] for c in rest.json()["commits"]] == [
        f"commit {n}" for n in range(3, -1, -1)
    ]
    assert rest.json()["next_cursor"] is None


def test_non_fast_forward_is_refused_then_forced(admin: KeyFile, tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    generate_history(ours, Workload(commits=3, files=4, changed_per_commit=1))
    generate_history(theirs, Workload(commits=2, files=5, changed_per_commit=1))
    assert call("POST", "/api/repos", {"owner": "admin", "name": "nff"}, admin).status == 201
    assert push(admin, ours, "admin/nff", [])["http_status"] == 200

    refused = push(admin, theirs, "admin/nff", [])
    assert refused["http_status"] == 409 and refused["code"] == "non_fast_forward"
    assert call("GET", "/admin/nff/refs").json()["branch_heads"] == list_branches(ours)

    protected = push(admin, theirs, "admin/nff", [], force=True)
    assert protected["http_status"] == 403 and protected["code"] == "branch_protected"
    assert call("GET", "/admin/nff/refs").json()["branch_heads"] == list_branches(ours)
    repo_id = call("GET", "/api/repos/by-slug/admin/nff").json()["repoId"]
    rules = {"rules": [{"pattern": ":default", "force_push": True}]}
    assert call("PUT", f"/api/repos/{repo_id}/protection", rules, admin).status == 200

    forced = push(admin, theirs, "admin/nff", [], force=True)
    assert forced["http_status"] == 200, forced
    assert call("GET", "/admin/nff/refs").json()["branch_heads"] == list_branches(theirs)


def test_unpack_without_upload_is_404(admin: KeyFile) -> None:
    assert call("POST", "/api/repos", {"owner": "admin", "name": "empty"}, admin).status == 201
    answer = call(
        "POST",
        "/admin/empty/push/unpack-mpack",
        {"mpack_key": "sha256:" + "0" * 64, "branch": "main", "head": "1" * 64},
        admin,
    )
    assert answer.status == 404 and answer.json()["code"] == "pack_not_found"
