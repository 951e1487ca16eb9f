"""Bad v0 input gets a coded 4xx and leaves nothing visible; a v0 push stores exactly what an
mpack push of the same history stores; tags, releases and the default branch round-trip."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import requests

from muse_cloud.storage import keys
from muse_cloud_cli.client import ClientError, MuseCloudClient
from muse_cloud_cli.main import main
from muse_cloud_cli.wire_v0_client import WireClient, WireError, bundle_for, push_branch
from muse_cloud_dev.local_stack import LocalStack
from muse_cloud_dev.server import stores
from muse_core.ids import blob_id
from muse_core.object_store import read_object
from muse_core.refs import write_branch_ref
from muse_core.repo import init_repo

from .conftest import commit, history, person, wire


def _refused(call: Any, status: int, code: str) -> dict[str, Any]:
    with pytest.raises(WireError) as refused:
        call()
    error: dict[str, Any] = refused.value.json()
    assert (refused.value.status, error["code"]) == (status, code), error
    return error


def _raw(client: WireClient, path: str, body: bytes) -> requests.Response:
    assert client.token is not None
    headers = {
        "Content-Type": "application/x-msgpack",
        "Authorization": f"Bearer {client.token}",
    }
    return requests.post(f"{client.remote}/{path}", data=body, headers=headers, timeout=30)


def test_malformed_bodies_and_ids_are_coded_400s(stack: LocalStack) -> None:
    client = wire(stack, person(stack, "bad"), "songs")
    for body in (b"\xc1", b"\x93\x01\x02\x03", b"\x81\xa1a"):
        answer = _raw(client, "filter-objects", body)
        assert answer.status_code == 400 and answer.json()["code"] == "malformed_body", body
    error = _refused(lambda: client.filter_objects(["nope"]), 422, "invalid_id")
    assert "nope" in error["item"]
    _refused(
        lambda: client.call("POST", "filter-objects", {"object_ids": "x"}), 400, "invalid_body"
    )
    direction = {"object_ids": [], "direction": "get"}
    _refused(lambda: client.call("POST", "presign", direction), 422, "unsupported_direction")
    _refused(lambda: client.fetch(["f" * 64], []), 404, "not_found")
    _refused(lambda: client.negotiate(["F" * 64], []), 422, "invalid_id")
    bad = {"objects": [{"object_id": blob_id(b"a"), "content": b"b"}]}
    error = _refused(lambda: client.call("POST", "push/objects", bad), 422, "object_hash_mismatch")
    assert error["item"] == blob_id(b"a")
    not_bin = {"objects": [{"object_id": blob_id(b"a"), "content": "a"}]}
    _refused(lambda: client.call("POST", "push/objects", not_bin), 400, "invalid_body")


def _invalid_bundles(bundle: dict[str, Any]) -> dict[str, tuple[dict[str, Any], str]]:
    """Each a copy of a valid bundle broken in one way, with the code ingestion answers."""
    cases: dict[str, tuple[dict[str, Any], str]] = {}
    wrong_id = copy.deepcopy(bundle)
    wrong_id["commits"][0]["message"] = "tampered"
    cases["commit id"] = (wrong_id, "commit_id_mismatch")
    wrong_snapshot = copy.deepcopy(bundle)
    first = wrong_snapshot["snapshots"][0]["manifest"]
    first["extra.txt"] = next(iter(first.values()))
    cases["snapshot id"] = (wrong_snapshot, "snapshot_hash_mismatch")
    dangling = copy.deepcopy(bundle)
    dangling["commits"] = dangling["commits"][:1]
    dangling["snapshots"] = dangling["snapshots"][:1]
    cases["dangling parents"] = (dangling, "missing_parent")
    return cases


def test_an_invalid_push_is_refused_whole_with_its_code(stack: LocalStack, tmp_path: Path) -> None:
    source = tmp_path / "source"
    ids = history(source)
    client = wire(stack, person(stack, "inv"), "songs")
    bundle = bundle_for(source, ids["merge"], set())
    objects = sorted({o for s in bundle["snapshots"] for o in s["manifest"].values()})
    client.push_objects({o: read_object(source, o) for o in objects})
    for name, (broken, code) in _invalid_bundles(bundle).items():
        error = _refused(lambda b=broken: client.push(b, "main"), 422, code)
        assert error["item"], name
        assert client.refs()["branch_heads"] == {}, name
    lonely = tmp_path / "lonely"
    init_repo(lonely)
    never = commit(lonely, {"never.txt": b"never uploaded"}, "lonely", (), 0)
    error = _refused(
        lambda: client.push(bundle_for(lonely, never, set()), "main"), 422, "dangling_object"
    )
    assert error["item"] == blob_id(b"never uploaded")
    _refused(lambda: client.push({"commits": []}, "main"), 422, "empty_push")
    _refused(lambda: client.push(bundle, "../up"), 422, "invalid_branch_name")
    _refused(
        lambda: client.call("POST", "push", {"bundle": bundle, "branch": "main", "force": 1}),
        400,
        "invalid_body",
    )
    with MuseCloudClient(stack.api_url) as anyone:
        owner, name = client.remote.rsplit("/", 2)[-2:]
        for cid in ids.values():
            assert anyone.request("GET", f"/{owner}/{name}/log").json()["commits"] == []
            with pytest.raises(ClientError) as unseen:
                anyone.commit(owner, name, cid)
            assert unseen.value.status == 404

    assert push_branch(client, source, "main")["ok"] is True  # the valid push still goes


def test_wrong_bytes_at_a_presigned_url_are_refused_then_a_right_upload_goes(
    stack: LocalStack, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    init_repo(source)
    big = bytes(range(256)) * 400  # over 64 KiB: presigned
    head = commit(source, {"big.bin": big}, "big", (), 0)
    write_branch_ref(source, "main", head)
    client = wire(stack, person(stack, "put"), "songs")
    url = client.presign([blob_id(big)])["presigned"][blob_id(big)]
    assert client.put_presigned(url, big[:-1] + b"!") == 200
    bundle = bundle_for(source, head, set())
    error = _refused(lambda: client.push(bundle, "main"), 422, "object_hash_mismatch")
    assert error["item"] == blob_id(big)
    assert client.filter_objects([blob_id(big)]) == [blob_id(big)]  # so the client sends it again
    assert push_branch(client, source, "main")["ok"] is True


def _stored(repo_id: str, prefix: str, item_id: str) -> dict[str, Any]:
    key = keys.commit(repo_id, item_id) if prefix == "commit" else keys.snapshot(repo_id, item_id)
    item = stores().table.get(key)
    assert item is not None, (prefix, item_id)
    return {k: v for k, v in item.items() if k not in ("pk", "sk")}


def test_the_same_history_by_v0_and_by_mpack_is_stored_identically(
    stack: LocalStack, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    ids = history(source)
    owner = person(stack, "par")
    key_file = tmp_path / "key.json"
    owner.save(key_file)
    by_v0 = wire(stack, owner, "by-v0")
    push_branch(by_v0, source, "main")
    push_branch(by_v0, source, "feature/x/y")
    with MuseCloudClient(stack.api_url, owner) as signed:
        signed.create_repo(owner.handle, "by-mpack")
        for branch in ("main", "feature/x/y"):
            remote = f"{stack.api_url}/{owner.handle}/by-mpack"
            argv = ["push", str(source), "--remote", remote, "--branch", branch]
            assert main([*argv, "--identity", str(key_file)]) == 0
        v0_repo = signed.repo_by_slug(owner.handle, "by-v0")["repoId"]
        mpack_repo = signed.repo_by_slug(owner.handle, "by-mpack")["repoId"]
        assert signed.refs(owner.handle, "by-v0") | {"repo_id": ""} == signed.refs(
            owner.handle, "by-mpack"
        ) | {"repo_id": ""}
        for cid in ids.values():
            assert _stored(v0_repo, "commit", cid) == _stored(mpack_repo, "commit", cid)
            snapshot_id = signed.commit(owner.handle, "by-v0", cid)["snapshot_id"]
            v0_snapshot = _stored(v0_repo, "snapshot", snapshot_id)
            assert v0_snapshot == _stored(mpack_repo, "snapshot", snapshot_id)
            for name in ("by-v0", "by-mpack"):
                manifest = signed.snapshot(owner.handle, name, snapshot_id)["manifest"]
                for object_id in manifest.values():
                    assert blob_id(signed.object(owner.handle, name, object_id)) == object_id


def test_tags_and_releases_round_trip(stack: LocalStack, tmp_path: Path) -> None:
    source = tmp_path / "source"
    ids = history(source)
    client = wire(stack, person(stack, "rel"), "songs")
    push_branch(client, source, "main")

    tag = {
        "tag_id": "t-1",
        "repo_id": "local",
        "commit_id": ids["merge"],
        "tag": "emotion:joy",
        "created_at": "2026-03-16T12:00:00+00:00",
    }
    assert client.add_tags([tag]) == {"stored": 1}
    assert client.add_tags([tag]) == {"stored": 0}  # sent again: idempotent
    assert client.call("GET", "tags")["tags"] == [tag]
    _refused(lambda: client.add_tags([{**tag, "tag": "other"}]), 409, "tag_exists")
    _refused(
        lambda: client.add_tags([{**tag, "tag_id": "t-2", "commit_id": "a" * 64}]),
        422,
        "missing_commit",
    )

    release = {
        "repo_id": "local",
        "tag": "v1.0/rc",
        "semver": {"major": 1, "minor": 0, "patch": 0, "pre": "rc", "build": ""},
        "channel": "beta",
        "commit_id": ids["merge"],
        "snapshot_id": "",
        "title": "First",
        "body": "notes",
        "changelog": [
            {
                "commit_id": ids["first"],
                "message": "init",
                "sem_ver_bump": "none",
                "breaking_changes": [],
                "author": "",
                "committed_at": "2026-03-16T12:00:00+00:00",
                "agent_id": "",
                "model_id": "",
            }
        ],
        "agent_id": "",
        "model_id": "",
        "is_draft": False,
        "gpg_signature": "",
        "created_at": "2026-03-16T12:05:00+00:00",
    }
    release_id = client.create_release(release)["release_id"]
    assert client.create_release(release)["release_id"] == release_id
    draft = {**release, "tag": "v2", "is_draft": True, "channel": "stable"}
    client.create_release(draft)
    listed = client.releases()
    assert [r["tag"] for r in listed] == ["v1.0/rc"]
    assert listed[0] == {**release, "release_id": release_id}
    assert [r["tag"] for r in client.releases("?include_drafts=1")] == ["v2", "v1.0/rc"]
    assert client.releases("?channel=stable") == []
    _refused(lambda: client.create_release({**release, "title": "changed"}), 409, "release_exists")
    _refused(lambda: client.create_release({**release, "channel": "lts"}), 422, "invalid_channel")
    _refused(
        lambda: client.create_release({**release, "commit_id": "b" * 64}), 422, "missing_commit"
    )
    assert client.retract_release("v1.0/rc") == {"retracted": "v1.0/rc"}
    assert client.releases() == []
    _refused(lambda: client.retract_release("v1.0/rc"), 404, "not_found")


def test_the_domain_given_at_creation_is_what_refs_answer(stack: LocalStack) -> None:
    owner = person(stack, "dom")
    with MuseCloudClient(stack.api_url, owner) as signed:
        body = {"owner": owner.handle, "name": "beats", "domain": "midi"}
        assert signed.request("POST", "/api/repos", body).json()["domain"] == "midi"
        assert signed.refs(owner.handle, "beats")["domain"] == "midi"
        with pytest.raises(ClientError) as refused:
            signed.request("POST", "/api/repos", {**body, "name": "x", "domain": "Bad Domain"})
        assert refused.value.status == 422


def test_a_repository_whose_only_branch_is_trunk_defaults_to_trunk(
    stack: LocalStack, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    init_repo(source)
    head = commit(source, {"a.txt": b"a"}, "first", (), 0, branch="trunk")
    write_branch_ref(source, "trunk", head)
    client = wire(stack, person(stack, "trk"), "songs")
    push_branch(client, source, "trunk")
    refs = client.refs()
    assert refs["default_branch"] == "trunk" and refs["branch_heads"] == {"trunk": head}
    later = commit(source, {"a.txt": b"b"}, "second", (), 1)
    write_branch_ref(source, "main", later)
    push_branch(client, source, "main")
    assert client.refs()["default_branch"] == "trunk"  # carried, not overwritten
