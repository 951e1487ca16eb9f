"""Presigning a pack that is already in place says so; presigning it for another target
starts a new ingestion that moves only the refs."""

from __future__ import annotations

from histories import linear_history

from muse_cloud_dev.provision import Provisioned
from muse_core.mpack import encode_mpack, mpack_key

from .client import call
from .test_endpoints import create_repo, expect_error, identity, push


def test_a_pushed_pack_is_reported_in_place(stack: Provisioned) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    data = encode_mpack(linear_history(2).pack({}))
    first = push(stack, owner, repo, data)
    assert first.status == 200, first.body

    again = call(
        "POST",
        "/olivia/songs/push/mpack-presign",
        {"mpack_key": mpack_key(data), "size_bytes": len(data)},
        owner,
    )

    assert again.status == 200, again.body
    grant = again.json()
    assert grant["status"] == "ok" and grant["upload_url"].startswith("http")
    assert grant["push_id"] == first.json()["push_id"]


def test_push_status_of_an_id_that_cannot_exist_is_404(stack: Provisioned) -> None:
    owner = identity("olivia")
    create_repo(owner, "songs")
    for push_id in ("nope", "x" * 3000, "A" * 64):
        expect_error(call("GET", f"/olivia/songs/push/{push_id}"), 404, "not_found")


def test_a_pack_presigned_again_for_another_branch_moves_that_branch(
    stack: Provisioned,
) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    history = linear_history(2)
    data = encode_mpack(history.pack({}))
    assert push(stack, owner, repo, data).status == 200
    body = {"mpack_key": mpack_key(data), "branch": "release", "head": history.head}

    stale = call("POST", "/olivia/songs/push/unpack-mpack", body, owner)
    expect_error(stale, 409, "push_mismatch")
    grant = call(
        "POST",
        "/olivia/songs/push/mpack-presign",
        {**body, "size_bytes": len(data)},
        owner,
    ).json()
    assert grant["status"] == "pending"
    moved = call("POST", "/olivia/songs/push/unpack-mpack", body, owner)

    assert moved.status == 200, moved.body
    assert moved.json()["branch"] == "release" and moved.json()["previous_head"] is None
    heads = call("GET", "/olivia/songs/refs").json()["branch_heads"]
    assert heads == {"main": history.head, "release": history.head}
