"""Over a real moto server: a forced push that rebuilds the bytes of an earlier pack moves the
ref, and unpack-mpack called before the upload neither uses the push up nor fails it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from muse_cloud.services.ingest import MAX_ATTEMPTS
from muse_cloud_cli.signer import KeyFile, new_identity
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import services
from muse_core.commits import has_commit
from muse_core.mpack import build_mpack, encode_mpack, mpack_key
from muse_core.refs import list_branches

from .client import Answer, call
from .test_endpoints import expect_error


@pytest.fixture
def admin(server_stack: Provisioned) -> KeyFile:
    key = new_identity("admin", is_admin=True)
    services().identities.ensure_bootstrap_admin(key.public_key)
    created = call("POST", "/api/repos", {"owner": "admin", "name": "songs"}, key)
    assert created.status == 201, created.body
    # Forced pushes of main are what these tests make: its rule must allow them.
    rules = {"rules": [{"pattern": ":default", "force_push": True}]}
    allowed = call("PUT", f"/api/repos/{created.json()['repoId']}/protection", rules, key)
    assert allowed.status == 200, allowed.body
    return key


def presign(key: KeyFile, data: bytes, **target: Any) -> dict[str, Any]:
    answer = call(
        "POST",
        "/admin/songs/push/mpack-presign",
        {"mpack_key": mpack_key(data), "size_bytes": len(data), **target},
        key,
    )
    assert answer.status == 200, answer.body
    grant: dict[str, Any] = answer.json()
    return grant


def put(grant: dict[str, Any], data: bytes) -> None:
    answer = requests.put(grant["upload_url"], data=data, headers=grant["headers"], timeout=30)
    assert answer.status_code == 200, answer.text


def unpack(key: KeyFile, data: bytes, **target: Any) -> Answer:
    body = {"mpack_key": mpack_key(data), **target}
    return call("POST", "/admin/songs/push/unpack-mpack", body, key)


def client_push(key: KeyFile, root: Path, force: bool = False) -> Answer:
    """As the CLI pushes: against the server's heads, uploading unless the pack is in place."""
    heads = call("GET", "/admin/songs/refs").json()["branch_heads"]
    have = sorted(h for h in heads.values() if has_commit(root, h))
    data = encode_mpack(build_mpack(root, ["main"], have=have))
    target = {"branch": "main", "head": list_branches(root)["main"], "force": force}
    grant = presign(key, data, **target)
    if grant["status"] not in ("ok", "processing"):
        put(grant, data)
    return unpack(key, data, **target)


@pytest.fixture
def rolled_back(admin: KeyFile, tmp_path: Path) -> tuple[Path, bytes, str]:
    """``ours`` pushed main, then ``theirs`` forced main onto a history ours lacks: pushing ours
    again rebuilds the very bytes of its first push."""
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    generate_history(ours, Workload(commits=3, files=4, changed_per_commit=1))
    generate_history(theirs, Workload(commits=2, files=5, changed_per_commit=1))
    first = encode_mpack(build_mpack(ours, ["main"]))
    assert client_push(admin, ours).status == 200
    forced = client_push(admin, theirs, force=True)
    assert forced.status == 200, forced.body
    theirs_head = list_branches(theirs)["main"]
    assert call("GET", "/admin/songs/refs").json()["branch_heads"] == {"main": theirs_head}
    return ours, first, theirs_head


def test_a_forced_push_of_an_earlier_packs_bytes_moves_the_ref(
    admin: KeyFile, rolled_back: tuple[Path, bytes, str]
) -> None:
    ours, first, theirs_head = rolled_back
    head = list_branches(ours)["main"]
    assert encode_mpack(build_mpack(ours, ["main"])) == first  # the same bytes, the same key
    grant = presign(admin, first, branch="main", head=head, force=True)
    assert grant["status"] == "pending"  # not "ok": the ref is elsewhere now

    answer = client_push(admin, ours, force=True)

    assert answer.status == 200, answer.body
    result = answer.json()
    assert result["push_id"] == grant["push_id"]
    assert (result["force"], result["branch"], result["head"]) == (True, "main", head)
    assert result["previous_head"] == theirs_head
    assert result["updates"] == [{"branch": "main", "head": head, "previous_head": theirs_head}]
    assert call("GET", "/admin/songs/refs").json()["branch_heads"] == {"main": head}
    status = call("GET", f"/admin/songs/push/{grant['push_id']}").json()
    assert status["status"] == "ok" and status["previous_head"] == theirs_head
    # In effect now: presigning it again says so, and unpack answers the same result.
    assert presign(admin, first, branch="main", head=head, force=True)["status"] == "ok"
    again = unpack(admin, first, branch="main", head=head, force=True)
    assert again.status == 200 and again.json() == result


def test_an_unforced_push_of_an_earlier_packs_bytes_is_not_a_fast_forward(
    admin: KeyFile, rolled_back: tuple[Path, bytes, str]
) -> None:
    ours, _first, theirs_head = rolled_back

    refused = client_push(admin, ours)

    expect_error(refused, 409, "non_fast_forward")
    assert call("GET", "/admin/songs/refs").json()["branch_heads"] == {"main": theirs_head}


def test_unpack_before_the_upload_is_404_every_time_and_never_uses_the_push_up(
    admin: KeyFile, tmp_path: Path
) -> None:
    generate_history(tmp_path, Workload(commits=2, files=3, changed_per_commit=1))
    data = encode_mpack(build_mpack(tmp_path, ["main"]))
    target = {"branch": "main", "head": list_branches(tmp_path)["main"]}
    grant = presign(admin, data, **target)

    for _ in range(MAX_ATTEMPTS + 2):
        early = unpack(admin, data, **target)
        assert expect_error(early, 404, "pack_not_found")["item"] == mpack_key(data)
    status = call("GET", f"/admin/songs/push/{grant['push_id']}").json()
    assert status["status"] == "pending" and "error" not in status

    put(grant, data)
    answer = unpack(admin, data, **target)

    assert answer.status == 200, answer.body
    assert answer.json()["status"] == "ok" and answer.json()["commits_written"] == 2
    assert call("GET", "/admin/songs/refs").json()["branch_heads"] == list_branches(tmp_path)
