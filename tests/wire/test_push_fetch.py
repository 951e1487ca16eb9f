"""Push, fetch, clone and negotiate as the Muse client does them, over real HTTP."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests

from muse_cloud_cli.client import MuseCloudClient
from muse_cloud_cli.wire_v0_client import WireError, bundle_for, clone_into, push_branch
from muse_cloud_dev.local_stack import LocalStack
from muse_core.commits import read_commit
from muse_core.ids import blob_id
from muse_core.object_store import read_object
from muse_core.refs import write_branch_ref
from muse_core.repo import init_repo
from muse_core.snapshots import read_snapshot

from .conftest import BASE, commit, history, person, wire

EMPTY = blob_id(b"")


def test_push_a_merge_history_and_a_nested_branch_then_clone_it(
    stack: LocalStack, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    ids = history(source)
    client = wire(stack, person(stack, "ana"), "songs")

    pushed = push_branch(client, source, "main")
    assert pushed["ok"] is True
    assert pushed["branch_heads"] == {"main": ids["merge"]}
    nested = push_branch(client, source, "feature/x/y")
    assert nested["branch_heads"] == {"main": ids["merge"], "feature/x/y": ids["side"]}
    # The second push offered only what the remote lacked: its objects were all held.
    assert client.calls[-2][1] == "filter-objects" or client.calls[-2][1] == "push/objects"

    refs = client.refs()
    assert refs["default_branch"] == "main" and refs["domain"] == "code"

    copy = tmp_path / "copy"
    init_repo(copy)
    answer = clone_into(client, copy)
    assert {c["commit_id"] for c in answer["commits"]} == set(ids.values())
    for cid in ids.values():
        sent = read_commit(source, cid).to_dict()
        assert read_commit(copy, cid).to_dict() == sent  # every field, unknown ones too
        snapshot = read_snapshot(source, sent["snapshot_id"])
        assert read_snapshot(copy, snapshot.snapshot_id).manifest == snapshot.manifest
    # Empty files are sent (the 0.1.5 client then skips zero-length objects itself).
    sent_objects = {o["object_id"]: o["content"] for o in answer["objects"]}
    assert sent_objects[EMPTY] == b""
    for data in BASE.values():
        assert sent_objects[blob_id(data)] == data


def test_fetch_honours_have_and_negotiate_acks_what_the_server_holds(
    stack: LocalStack, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    ids = history(source)
    client = wire(stack, person(stack, "bo"), "songs")
    push_branch(client, source, "main")

    everything = client.fetch([ids["merge"]], [])
    assert len(everything["commits"]) == 4
    increment = client.fetch([ids["merge"]], [ids["second"], "f" * 64])
    assert {c["commit_id"] for c in increment["commits"]} == {ids["side"], ids["merge"]}
    # Only the objects the have'd snapshots lack, and full manifests all the same.
    assert {o["content"] for o in increment["objects"]} == {b"side"}
    merged = read_snapshot(source, read_commit(source, ids["merge"]).snapshot_id)
    by_id = {s["snapshot_id"]: s["manifest"] for s in increment["snapshots"]}
    assert by_id[merged.snapshot_id] == merged.manifest
    assert client.fetch([ids["merge"]], [ids["merge"]])["commits"] == []

    unknown = "e" * 64
    answer = client.negotiate([ids["merge"]], [ids["first"], unknown])
    assert answer == {"ack": [ids["first"]], "common_base": None, "ready": False}
    assert client.negotiate([ids["merge"]], [ids["merge"]])["ready"] is True


def test_non_fast_forward_is_a_409_then_force_moves_the_branch(
    stack: LocalStack, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    ids = history(source)
    owner = person(stack, "cy")
    client = wire(stack, owner, "songs")
    push_branch(client, source, "main")

    rewritten = commit(source, {"only.txt": b"new root"}, "rewrite", (ids["first"],), 9)
    write_branch_ref(source, "main", rewritten)
    with pytest.raises(WireError) as refused:
        push_branch(client, source, "main")
    assert refused.value.status == 409
    assert refused.value.json()["code"] == "non_fast_forward"
    assert client.refs()["branch_heads"]["main"] == ids["merge"]
    with pytest.raises(WireError) as protected:
        push_branch(client, source, "main", force=True)
    assert protected.value.status == 403
    assert protected.value.json()["code"] == "branch_protected"
    with MuseCloudClient(stack.api_url, owner) as api:
        repo_id = api.repo_by_slug(owner.handle, "songs")["repoId"]
        api.set_protection(repo_id, [{"pattern": ":default", "force_push": True}], None)

    forced = push_branch(client, source, "main", force=True)
    assert forced["ok"] is True and forced["branch_heads"]["main"] == rewritten


def test_a_20_mib_object_goes_by_presigned_put_and_a_clone_of_it_is_a_coded_413(
    stack: LocalStack, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    init_repo(source)
    big = os.urandom(20 * 1024 * 1024)
    head = commit(source, {"big.wav": big, "small.txt": b"s"}, "big", (), 0)
    write_branch_ref(source, "main", head)
    client = wire(stack, person(stack, "di"), "big")

    assert push_branch(client, source, "main")["ok"] is True
    paths = [path for _, path, _, _ in client.calls]
    assert paths.count("presign") == 1
    assert ("POST", "push/objects") in {(m, p) for m, p, _, _ in client.calls}
    sent_inline = max(sent for _, path, sent, _ in client.calls if path == "push/objects")
    assert sent_inline < 1024  # the big object went to S3 straight, not through the API

    # Stored and verified: the object route serves it (by a short-lived URL, being large).
    url = f"{client.remote}/objects/{blob_id(big)}"
    located = requests.get(url, allow_redirects=False, timeout=30)
    assert located.status_code == 302
    assert requests.get(located.headers["Location"], timeout=60).content == big

    with pytest.raises(WireError) as too_big:
        client.fetch([head], [])
    assert too_big.value.status == 413
    error = too_big.value.json()
    assert error["code"] == "answer_too_large" and "muse-cloud clone" in error["message"]
    assert error["item"] == head
    assert read_object(source, blob_id(big)) == big


def test_resent_known_commits_are_accepted_and_a_new_branch_at_a_held_commit_moves(
    stack: LocalStack, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    ids = history(source)
    client = wire(stack, person(stack, "ed"), "songs")
    push_branch(client, source, "main")
    # The whole history again, as a client with no tracking refs sends it, for a new branch.
    bundle = bundle_for(source, ids["merge"], set())
    answer = client.push(bundle, "release/1")
    assert answer["branch_heads"]["release/1"] == ids["merge"]
