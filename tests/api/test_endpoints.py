"""Every endpoint of protocol section 4, its answers and its refusals, through API Gateway v2
events on the in-process moto stack.

The helpers at the top (an in-memory history, identities, pushes) are shared by the other API
tests of this package.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import msgpack
import pytest
from histories import History, linear_history

from muse_cloud.auth.msign import b64url_decode
from muse_cloud.domain.identities import Identity
from muse_cloud.services.history import HistoryService
from muse_cloud.storage import layout
from muse_cloud.storage.identities import IdentityStore
from muse_cloud.storage.layout import UploadKey
from muse_cloud_cli.signer import KeyFile, new_identity
from muse_cloud_dev.provision import Provisioned, load_template
from muse_cloud_dev.server import s3, services, settings, stores
from muse_core.commits import CommitRecord
from muse_core.ids import blob_id
from muse_core.mpack import decode_mpack, encode_mpack, mpack_key
from muse_core.verify import EmptyReceiver, verify_mpack

from .client import Answer, call

NO_SUCH_ID = "f" * 64


# --- shared helpers -------------------------------------------------------------------------


def identity(handle: str, *, is_admin: bool = False, is_agent: bool = False) -> KeyFile:
    """A new key pair, registered on the server under ``handle``."""
    key = new_identity(handle, is_admin=is_admin, is_agent=is_agent)
    stores().identities.register(
        Identity.from_public_key(
            handle, b64url_decode(key.public_key), is_admin=is_admin, is_agent=is_agent
        )
    )
    return key


def bootstrap_admin() -> KeyFile:
    key = new_identity("admin", is_admin=True)
    services().identities.ensure_bootstrap_admin(key.public_key)
    return key


def expect_error(answer: Answer, status: int, code: str) -> dict[str, Any]:
    """The status, and a JSON body with this stable ``code`` and a human ``message``."""
    assert answer.status == status, (answer.status, answer.body)
    body: dict[str, Any] = answer.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    return body


def create_repo(key: KeyFile, name: str, visibility: str = "public") -> dict[str, Any]:
    answer = call(
        "POST", "/api/repos", {"owner": key.handle, "name": name, "visibility": visibility}, key
    )
    assert answer.status == 201, answer.body
    created: dict[str, Any] = answer.json()
    return created


def upload(stack: Provisioned, repo_id: str, data: bytes, mpack_hex: str | None = None) -> str:
    """Put ``data`` where a presigned PUT would (under ``mpack_hex`` to lie about its key)."""
    hex_key = mpack_hex or mpack_key(data).removeprefix("sha256:")
    s3_key = UploadKey(repo_id, hex_key).s3_key
    boto3.client("s3").put_object(Bucket=stack.names.bucket, Key=s3_key, Body=data)
    return f"sha256:{hex_key}"


def push(
    stack: Provisioned,
    key: KeyFile,
    repo: Mapping[str, Any],
    data: bytes,
    branch: str | None = "main",
    head: str | None = None,
    **extra: Any,
) -> Answer:
    """Presign, upload, unpack-mpack: the answer of the unpack call."""
    slug = repo["fullName"]
    presign = call(
        "POST",
        f"/{slug}/push/mpack-presign",
        {"mpack_key": mpack_key(data), "size_bytes": len(data)},
        key,
    )
    assert presign.status == 200, presign.body
    upload(stack, repo["repoId"], data)
    body: dict[str, Any] = {"mpack_key": mpack_key(data), **extra}
    if branch is not None:
        body["branch"] = branch
        body["head"] = head or decode_mpack(data)["branch_heads"][branch]
    return call("POST", f"/{slug}/push/unpack-mpack", body, key)


def fetched_pack(stack: Provisioned, repo_id: str, grant: Mapping[str, Any]) -> bytes:
    """The bytes behind a fetch answer's download_url (read from the bucket)."""
    s3_key = layout.fetch_pack(repo_id, grant["mpack_key"].removeprefix("sha256:"))
    data: bytes = (
        boto3.client("s3").get_object(Bucket=stack.names.bucket, Key=s3_key)["Body"].read()
    )
    assert mpack_key(data) == grant["mpack_key"]
    assert len(data) == grant["size_bytes"]
    return data


@dataclass
class World:
    stack: Provisioned
    owner: KeyFile
    repo: dict[str, Any]
    history: History
    push: dict[str, Any]

    @property
    def slug(self) -> str:
        return str(self.repo["fullName"])


@pytest.fixture
def world(stack: Provisioned) -> World:
    """olivia/songs, public, with three commits on main pushed."""
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    history = linear_history(3)
    answer = push(stack, owner, repo, encode_mpack(history.pack()))
    assert answer.status == 200, answer.body
    return World(stack, owner, repo, history, answer.json())


# --- repositories ---------------------------------------------------------------------------


def test_create_repo_answers_201_with_the_repo(stack: Provisioned) -> None:
    owner = identity("olivia")
    answer = call(
        "POST",
        "/api/repos",
        {"owner": "olivia", "name": "songs", "visibility": "private", "initialize": True},
        owner,
    )
    assert answer.status == 201, answer.body
    repo = answer.json()
    assert {"repoId", "slug", "owner", "name", "visibility", "defaultBranch", "createdAt"} <= set(
        repo
    )
    assert repo["fullName"] == "olivia/songs" and repo["slug"] == "songs"
    assert repo["owner"] == "olivia"
    assert repo["name"] == "songs" and repo["visibility"] == "private"
    assert repo["defaultBranch"] == "main"
    # Visibility defaults to public.
    assert create_repo(owner, "other")["visibility"] == "public"


def test_create_repo_accepts_every_valid_handle_length(stack: Provisioned) -> None:
    for handle in ("a", "b" * 40):
        owner = identity(handle)
        answer = call("POST", "/api/repos", {"owner": handle, "name": "songs"}, owner)
        assert answer.status == 201, answer.body
        assert answer.json()["owner"] == handle
    admin = bootstrap_admin()
    body = expect_error(
        call("POST", "/api/repos", {"owner": "c" * 41, "name": "songs"}, admin),
        422,
        "invalid_request",
    )
    assert body["item"] == "body.owner"


def test_create_repo_refusals(stack: Provisioned) -> None:
    owner = identity("olivia")
    create_repo(owner, "songs")
    body = expect_error(
        call("POST", "/api/repos", {"owner": "olivia", "name": "songs"}, owner), 409, "repo_exists"
    )
    assert body["item"] == "olivia/songs"
    expect_error(call("POST", "/api/repos", {"owner": "olivia"}, owner), 422, "invalid_request")
    expect_error(
        call("POST", "/api/repos", {"owner": "olivia", "name": "x", "visibility": "secret"}, owner),
        422,
        "invalid_request",
    )
    expect_error(call("POST", "/api/repos", raw=b"{not json", key=owner), 400, "malformed_body")
    for bad in ("bad name", "..", "a..b", "x.git", "-x", "é"):
        answer = call("POST", "/api/repos", {"owner": "olivia", "name": bad}, owner)
        assert expect_error(answer, 400, "invalid_repo_name")["item"] == bad
    admin = bootstrap_admin()
    for owner_name in ("Not_A_Handle", "api"):
        expect_error(
            call("POST", "/api/repos", {"owner": owner_name, "name": "x"}, admin),
            400,
            "invalid_handle",
        )


def test_get_and_by_slug(world: World) -> None:
    repo_id = world.repo["repoId"]
    assert call("GET", f"/api/repos/{repo_id}").json() == world.repo
    by_slug = call("GET", "/api/repos/by-slug/olivia/songs")
    assert by_slug.status == 200 and by_slug.json() == world.repo
    expect_error(call("GET", "/api/repos/00000000-0000-0000-0000-000000000000"), 404, "not_found")
    expect_error(call("GET", "/api/repos/by-slug/olivia/nope"), 404, "not_found")


def test_delete_removes_everything_for_everyone_and_frees_the_name(world: World) -> None:
    repo_id = world.repo["repoId"]
    history = world.history
    head = history.head
    commit = history.records[head]
    oid = next(iter(history.snapshots[commit.snapshot_id].values()))
    admin = bootstrap_admin()
    reader = identity("rita")
    call("PUT", f"/api/repos/{repo_id}/collaborators/rita", {"role": "read"}, world.owner)

    answer = call("DELETE", f"/api/repos/{repo_id}", key=world.owner)
    assert answer.status == 204, answer.body

    gone = [
        ("GET", f"/api/repos/{repo_id}", None),
        ("GET", "/api/repos/by-slug/olivia/songs", None),
        ("GET", "/olivia/songs/refs", None),
        ("GET", "/olivia/songs/log", None),
        ("GET", f"/olivia/songs/commits/{head}", None),
        ("GET", f"/olivia/songs/snapshots/{commit.snapshot_id}", None),
        ("GET", f"/olivia/songs/objects/{oid}", None),
        ("GET", f"/olivia/songs/push/{world.push['push_id']}", None),
        ("POST", "/olivia/songs/fetch/mpack", {"want": [head], "have": []}),
    ]
    for caller in (None, world.owner, reader, admin):
        for method, path, body in gone:
            expect_error(call(method, path, body, caller), 404, "not_found")
    expect_error(call("DELETE", f"/api/repos/{repo_id}", key=world.owner), 404, "not_found")
    # The bytes are gone too: nothing left under the repository's prefixes.
    listed = boto3.client("s3").list_objects_v2(Bucket=world.stack.names.bucket)
    assert not [o["Key"] for o in listed.get("Contents", []) if repo_id in o["Key"]]

    again = create_repo(world.owner, "songs")
    assert again["repoId"] != repo_id
    refs = call("GET", "/olivia/songs/refs").json()
    assert refs["branch_heads"] == {} and refs["repo_id"] == again["repoId"]
    collaborators = call("GET", f"/api/repos/{again['repoId']}/collaborators", key=world.owner)
    assert collaborators.json() == {"collaborators": {}}
    expect_error(call("GET", f"/olivia/songs/commits/{head}"), 404, "not_found")
    expect_error(call("GET", f"/olivia/songs/objects/{oid}"), 404, "not_found")
    assert call("GET", "/olivia/songs/log").json() == {"commits": [], "next_cursor": None}


_BUCKET_ARN = "arn:${AWS::Partition}:s3:::${AWS::StackName}-${AWS::AccountId}-${AWS::Region}-packs"


def _api_statements() -> list[dict[str, Any]]:
    policies = load_template()["Resources"]["ApiFunction"]["Properties"]["Policies"]
    return [s for policy in policies for s in policy["Statement"]]


@pytest.mark.parametrize("prefix", [p.removesuffix("R/") for p in layout.repo_prefixes("R")])
def test_the_api_function_may_delete_every_prefix_it_deletes(prefix: str) -> None:
    wanted = f"{_BUCKET_ARN}/{prefix}*"
    allowed = [
        s
        for s in _api_statements()
        if s["Effect"] == "Allow"
        and "s3:DeleteObject" in s["Action"]
        and s["Resource"] == {"Sub": wanted}
    ]
    assert allowed, f"ApiFunction cannot delete {prefix}<repo_id>/"


def _keys(stack: Provisioned, repo_id: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=stack.names.bucket)
    return [o["Key"] for o in listed.get("Contents", []) if repo_id in o["Key"]]


def _with_fetch_pack(world: World) -> None:
    assert call("POST", f"/{world.slug}/fetch/mpack", {}).status == 200
    prefixes = {key.split("/", 1)[0] + "/" for key in _keys(world.stack, world.repo["repoId"])}
    # Every prefix holds something, so the test sees a failure on any of them.
    assert {"incoming/", "fetch/"} <= prefixes, prefixes


def test_keys_s3_refused_once_are_retried(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_fetch_pack(world)
    client = s3()
    real = client.delete_objects
    refused: list[str] = []

    def flaky(**kwargs: Any) -> Any:
        objects = kwargs["Delete"]["Objects"]
        if not refused:
            refused.extend(o["Key"] for o in objects)
            errors = [{"Key": o["Key"], "Code": "SlowDown", "Message": "Reduce"} for o in objects]
            return {"Errors": errors}
        return real(**kwargs)

    monkeypatch.setattr(client, "delete_objects", flaky)
    answer = call("DELETE", f"/api/repos/{world.repo['repoId']}", key=world.owner)
    assert answer.status == 204, answer.body
    assert refused and not _keys(world.stack, world.repo["repoId"])


def test_keys_s3_keeps_refusing_are_an_error(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_fetch_pack(world)
    repo_id = world.repo["repoId"]
    client = s3()
    real = client.delete_objects

    def denied_on_incoming(**kwargs: Any) -> Any:
        objects = kwargs["Delete"]["Objects"]
        if objects[0]["Key"].startswith("incoming/"):
            errors = [{"Key": o["Key"], "Code": "AccessDenied", "Message": "no"} for o in objects]
            return {"Errors": errors}
        return real(**kwargs)

    monkeypatch.setattr(client, "delete_objects", denied_on_incoming)
    answer = call("DELETE", f"/api/repos/{repo_id}", key=world.owner)
    body = expect_error(answer, 500, "delete_failed")
    assert body["item"].startswith(f"incoming/{repo_id}/")
    assert "AccessDenied" in body["message"]
    # The other prefixes were still freed.
    assert all(key.startswith("incoming/") for key in _keys(world.stack, repo_id))


def test_collaborators_endpoints(world: World) -> None:
    repo_id = world.repo["repoId"]
    base = f"/api/repos/{repo_id}/collaborators"
    assert call("GET", base, key=world.owner).json() == {"collaborators": {}}
    answer = call("PUT", f"{base}/walt", {"role": "write"}, world.owner)
    assert answer.status == 200 and answer.json() == {"handle": "walt", "role": "write"}
    assert call("GET", base, key=world.owner).json() == {"collaborators": {"walt": "write"}}
    expect_error(
        call("PUT", f"{base}/walt", {"role": "owner"}, world.owner), 422, "invalid_request"
    )
    expect_error(
        call("PUT", f"{base}/olivia", {"role": "admin"}, world.owner),
        400,
        "owner_is_not_collaborator",
    )
    expect_error(
        call("PUT", f"{base}/Bad_Handle", {"role": "read"}, world.owner), 400, "invalid_handle"
    )
    assert call("DELETE", f"{base}/walt", key=world.owner).status == 204
    expect_error(call("DELETE", f"{base}/walt", key=world.owner), 404, "not_found")
    assert call("GET", base, key=world.owner).json() == {"collaborators": {}}


def test_identities_endpoints(stack: Provisioned) -> None:
    admin = bootstrap_admin()
    fresh = new_identity("newbie", is_agent=True)
    body = {"handle": "newbie", "public_key": fresh.public_key, "is_agent": True}
    expect_error(call("POST", "/api/identities", body), 401, "auth_required")
    answer = call("POST", "/api/identities", body, admin)
    assert answer.status == 201, answer.body
    assert answer.json() == {
        "identity_id": fresh.identity_id,
        "handle": "newbie",
        "is_admin": False,
        "is_agent": True,
    }
    expect_error(call("POST", "/api/identities", body, admin), 409, "identity_exists")
    other = new_identity("newbie")
    expect_error(
        call(
            "POST", "/api/identities", {"handle": "newbie", "public_key": other.public_key}, admin
        ),
        409,
        "handle_taken",
    )
    expect_error(
        call("POST", "/api/identities", {"handle": "x", "public_key": "not base64!"}, admin),
        400,
        "invalid_public_key",
    )
    third = new_identity("third")
    expect_error(
        call("POST", "/api/identities", {"handle": "third", "public_key": third.public_key}, fresh),
        403,
        "forbidden",
    )
    me = call("GET", "/api/identities/me", key=fresh).json()
    assert me["handle"] == "newbie" and me["is_agent"] and not me["anonymous"]
    assert call("GET", "/api/identities/me").json()["anonymous"] is True


# --- push -----------------------------------------------------------------------------------


def test_presign_answer_and_push_status(stack: Provisioned) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    history = linear_history(2)
    data = encode_mpack(history.pack())
    key = mpack_key(data)
    before = datetime.now(UTC)

    answer = call(
        "POST",
        "/olivia/songs/push/mpack-presign",
        {"mpack_key": key, "size_bytes": len(data), "branch": "main", "head": history.head},
        owner,
    )

    assert answer.status == 200, answer.body
    grant = answer.json()
    assert {"upload_url", "push_id", "mpack_key", "expires_at", "headers"} <= set(grant)
    assert grant["mpack_key"] == key
    upload_key = UploadKey(repo["repoId"], key.removeprefix("sha256:"))
    assert grant["upload_url"].startswith("http") and upload_key.s3_key in grant["upload_url"]
    expires = datetime.fromisoformat(grant["expires_at"])
    assert before < expires <= datetime.now(UTC) + timedelta(seconds=301)
    digest = bytes.fromhex(key.removeprefix("sha256:"))
    headers = {k.lower(): v for k, v in grant["headers"].items()}
    assert headers["x-amz-checksum-sha256"] == base64.b64encode(digest).decode()
    assert headers["content-length"] == str(len(data))

    status = call("GET", f"/olivia/songs/push/{grant['push_id']}")
    assert status.status == 200 and status.json()["status"] == "pending"
    assert status.json()["push_id"] == grant["push_id"]

    upload(stack, repo["repoId"], data)
    unpacked = call(
        "POST",
        "/olivia/songs/push/unpack-mpack",
        {"mpack_key": key, "branch": "main", "head": history.head},
        owner,
    )
    assert unpacked.status == 200, unpacked.body
    result = unpacked.json()
    assert result["push_id"] == grant["push_id"] and result["status"] == "ok"
    assert (result["commits_written"], result["snapshots_written"]) == (2, 2)
    assert result["objects_written"] == len(history.blobs)
    assert (result["branch"], result["head"], result["previous_head"]) == (
        "main",
        history.head,
        None,
    )
    done = call("GET", f"/olivia/songs/push/{grant['push_id']}").json()
    assert done["status"] == "ok" and done["commits_written"] == 2
    expect_error(call("GET", f"/olivia/songs/push/{NO_SUCH_ID}"), 404, "not_found")


def test_presign_refusals(stack: Provisioned) -> None:
    owner = identity("olivia")
    create_repo(owner, "songs")
    path = "/olivia/songs/push/mpack-presign"
    good = "sha256:" + "a" * 64
    for bad in ("a" * 64, "sha256:" + "A" * 64, "sha256:xyz", "md5:" + "a" * 32, ""):
        answer = call("POST", path, {"mpack_key": bad, "size_bytes": 10}, owner)
        expect_error(answer, 422, "invalid_id")
    expect_error(
        call("POST", path, {"mpack_key": good, "size_bytes": 0}, owner), 422, "invalid_size"
    )
    expect_error(
        call("POST", path, {"mpack_key": good, "size_bytes": -5}, owner), 422, "invalid_size"
    )
    too_big = settings().max_upload_bytes + 1
    body = expect_error(
        call("POST", path, {"mpack_key": good, "size_bytes": too_big}, owner),
        413,
        "limit_exceeded",
    )
    assert body["item"] == str(too_big)
    expect_error(
        call("POST", path, {"mpack_key": good, "size_bytes": "many"}, owner), 422, "invalid_request"
    )
    expect_error(call("POST", path, {"size_bytes": 10}, owner), 422, "invalid_request")
    expect_error(
        call("POST", path, {"mpack_key": good, "size_bytes": 10, "branch": "../x"}, owner),
        422,
        "invalid_branch_name",
    )
    expect_error(
        call("POST", path, {"mpack_key": good, "size_bytes": 10, "head": "nope"}, owner),
        422,
        "invalid_id",
    )
    expect_error(
        call(
            "POST", "/olivia/nope/push/mpack-presign", {"mpack_key": good, "size_bytes": 1}, owner
        ),
        404,
        "not_found",
    )


def test_unpack_refuses_bytes_that_do_not_hash_to_the_key(stack: Provisioned) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    history = linear_history(2)
    data = encode_mpack(history.pack())
    claimed = "b" * 64
    key = upload(stack, repo["repoId"], data, mpack_hex=claimed)
    body = {"mpack_key": key, "branch": "main", "head": history.head}

    first = call("POST", "/olivia/songs/push/unpack-mpack", body, owner)

    refusal = expect_error(first, 422, "mpack_key_mismatch")
    assert refusal["item"] == key
    status = call("GET", f"/olivia/songs/push/{claimed}").json()
    assert status["status"] == "failed" and status["error"]["code"] == "mpack_key_mismatch"
    # Recorded once: asking again answers the same refusal.
    again = call("POST", "/olivia/songs/push/unpack-mpack", body, owner)
    assert again.status == 422 and again.json() == refusal
    assert call("GET", "/olivia/songs/refs").json()["branch_heads"] == {}


def test_unpack_refuses_a_commit_whose_id_does_not_recompute(stack: Provisioned) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    history = linear_history(2)
    pack = history.pack()
    forged = pack["commits"][-1]
    forged["message"] = "rewritten after the id was computed"
    answer = push(stack, owner, repo, encode_mpack(pack), head=history.head)
    assert expect_error(answer, 422, "commit_id_mismatch")["item"] == forged["commit_id"]
    assert call("GET", "/olivia/songs/refs").json()["branch_heads"] == {}
    expect_error(call("GET", f"/olivia/songs/commits/{history.order[0]}"), 404, "not_found")


def test_unpack_refusals_before_ingestion(stack: Provisioned) -> None:
    owner = identity("olivia")
    create_repo(owner, "songs")
    path = "/olivia/songs/push/unpack-mpack"
    expect_error(call("POST", path, {"mpack_key": "sha256:nope"}, owner), 422, "invalid_id")
    expect_error(call("POST", path, {"branch": "main"}, owner), 422, "invalid_request")
    answer = call("POST", path, {"mpack_key": "sha256:" + "0" * 64, "branch": "main"}, owner)
    expect_error(answer, 404, "pack_not_found")


def test_second_unpack_returns_the_recorded_result(world: World) -> None:
    first = world.push
    refs = call("GET", "/olivia/songs/refs").json()
    body = {"mpack_key": first["mpack_key"], "branch": "main", "head": world.history.head}

    again = call("POST", "/olivia/songs/push/unpack-mpack", body, world.owner)

    assert again.status == 200, again.body
    second = again.json()
    assert second["push_id"] == first["push_id"]
    for name in ("commits_written", "snapshots_written", "objects_written", "head"):
        assert second[name] == first[name], name
    assert second["updated_at"] == first["updated_at"]
    assert call("GET", "/olivia/songs/refs").json() == refs


# --- reading --------------------------------------------------------------------------------


def test_refs(world: World) -> None:
    answer = call("GET", "/olivia/songs/refs")
    assert answer.status == 200
    assert answer.json() == {
        "repo_id": world.repo["repoId"],
        "domain": "code",
        "default_branch": "main",
        "branch_heads": {"main": world.history.head},
    }
    expect_error(call("GET", "/olivia/nope/refs"), 404, "not_found")


def test_commit(world: World) -> None:
    head = world.history.head
    answer = call("GET", f"/olivia/songs/commits/{head}")
    assert answer.status == 200
    assert answer.json() == world.history.records[head].to_dict()
    expect_error(call("GET", f"/olivia/songs/commits/{NO_SUCH_ID}"), 404, "not_found")
    for bad in ("xyz", head.upper(), head[:-1]):
        expect_error(call("GET", f"/olivia/songs/commits/{bad}"), 422, "invalid_id")


def test_log_branches_limits_and_cursors(stack: Provisioned) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    empty = call("GET", "/olivia/songs/log")
    assert empty.status == 200 and empty.json() == {"commits": [], "next_cursor": None}
    history = linear_history(4)
    c0, c1, c2, c3 = history.order
    pack = history.pack({"main": c3, "dev": c1})
    result = push(stack, owner, repo, encode_mpack(pack), branch=None)
    assert result.status == 200, result.body

    def ids(answer: Answer) -> list[str]:
        assert answer.status == 200, answer.body
        return [c["commit_id"] for c in answer.json()["commits"]]

    assert ids(call("GET", "/olivia/songs/log")) == [c3, c2, c1, c0]
    assert ids(call("GET", "/olivia/songs/log", query={"branch": "dev"})) == [c1, c0]
    page = call("GET", "/olivia/songs/log", query={"branch": "main", "limit": "3"})
    assert ids(page) == [c3, c2, c1]
    cursor = page.json()["next_cursor"]
    rest = call("GET", "/olivia/songs/log", query={"limit": "3", "cursor": cursor})
    assert ids(rest) == [c0] and rest.json()["next_cursor"] is None
    assert ids(call("GET", "/olivia/songs/log", query={"limit": "1"})) == [c3]
    assert len(ids(call("GET", "/olivia/songs/log", query={"limit": "500"}))) == 4

    for limit in ("0", "501", "-1"):
        answer = call("GET", "/olivia/songs/log", query={"limit": limit})
        expect_error(answer, 422, "invalid_limit")
    expect_error(call("GET", "/olivia/songs/log", query={"limit": "ten"}), 422, "invalid_request")
    nested = base64.urlsafe_b64encode(b"[" * 5000).decode()
    oversized = base64.urlsafe_b64encode(json.dumps([c0] * 200).encode()).decode()
    for cursor in (
        "!!!",
        "bm90IGpzb24",
        base64.urlsafe_b64encode(b"[]").decode(),
        "W10",
        nested,
        oversized,
    ):
        answer = call("GET", "/olivia/songs/log", query={"cursor": cursor})
        expect_error(answer, 422, "invalid_cursor")
    expect_error(call("GET", "/olivia/songs/log", query={"branch": "nope"}), 404, "not_found")
    expect_error(
        call("GET", "/olivia/songs/log", query={"branch": "../x"}), 422, "invalid_branch_name"
    )


def test_snapshot(world: World) -> None:
    for cid in world.history.order:
        sid = world.history.records[cid].snapshot_id
        answer = call("GET", f"/olivia/songs/snapshots/{sid}")
        assert answer.status == 200, answer.body
        assert answer.json() == {"snapshot_id": sid, "manifest": world.history.snapshots[sid]}
    expect_error(call("GET", f"/olivia/songs/snapshots/{NO_SUCH_ID}"), 404, "not_found")
    expect_error(call("GET", "/olivia/songs/snapshots/abc"), 422, "invalid_id")


def test_object(world: World) -> None:
    for oid, data in world.history.blobs.items():
        answer = call("GET", f"/olivia/songs/objects/{oid}")
        assert answer.status == 200 and answer.body == data
        assert answer.headers["Content-Type"] == "application/octet-stream"
    expect_error(call("GET", f"/olivia/songs/objects/{NO_SUCH_ID}"), 404, "not_found")
    expect_error(call("GET", "/olivia/songs/objects/abc"), 422, "invalid_id")


def test_large_object_answers_a_redirect(world: World) -> None:
    size = settings().inline_object_bytes + 100 * 1024
    big = bytes(range(256)) * (size // 256)
    assert len(big) > settings().inline_object_bytes
    world.history.add({"samples/big.wav": big})
    data = encode_mpack(world.history.pack(have=[world.history.order[-2]]))
    assert push(world.stack, world.owner, world.repo, data).status == 200

    answer = call("GET", f"/olivia/songs/objects/{blob_id(big)}")

    assert answer.status == 302, answer.body
    location = answer.headers["Location"]
    assert location.startswith("http") and blob_id(big) in location
    # The URL serves a copy of exactly the object's bytes.
    copy_key = f"repos/{world.repo['repoId']}/objects/{blob_id(big)}"
    stored = boto3.client("s3").get_object(Bucket=world.stack.names.bucket, Key=copy_key)
    assert stored["Body"].read() == big
    # A second request reuses the copy.
    assert call("GET", f"/olivia/songs/objects/{blob_id(big)}").status == 302


def test_fetch_sends_only_what_is_missing(world: World) -> None:
    c0, c1, c2 = world.history.order
    answer = call("POST", "/olivia/songs/fetch/mpack", {"want": [c2], "have": [c0]})
    assert answer.status == 200, answer.body
    grant = answer.json()
    assert {"download_url", "mpack_key", "size_bytes"} <= set(grant)
    assert (grant["commits"], grant["snapshots"]) == (2, 2)
    data = fetched_pack(world.stack, world.repo["repoId"], grant)
    pack = decode_mpack(data)
    assert [c["commit_id"] for c in pack["commits"]] == [c1, c2]
    assert pack["branch_heads"] == {"main": c2}
    base = world.history.snapshots[world.history.records[c0].snapshot_id]
    assert {o["object_id"] for o in pack["objects"]}.isdisjoint(base.values())

    everything = call("POST", "/olivia/songs/fetch/mpack", {}).json()
    full = fetched_pack(world.stack, world.repo["repoId"], everything)
    verified = verify_mpack(full, EmptyReceiver())
    assert [c.commit_id for c in verified.commits] == [c0, c1, c2]

    body = expect_error(
        call("POST", "/olivia/songs/fetch/mpack", {"want": [NO_SUCH_ID]}), 404, "not_found"
    )
    assert body["item"] == NO_SUCH_ID
    expect_error(call("POST", "/olivia/songs/fetch/mpack", {"want": ["xyz"]}), 422, "invalid_id")
    expect_error(
        call("POST", "/olivia/songs/fetch/mpack", {"want": "not a list"}), 422, "invalid_request"
    )


# --- encodings and routing ------------------------------------------------------------------


def test_msgpack_request_and_answer(world: World) -> None:
    accept = {"accept": "application/x-msgpack"}
    body = msgpack.packb({"owner": "olivia", "name": "packed"}, use_bin_type=True)
    created = call(
        "POST",
        "/api/repos",
        raw=body,
        key=world.owner,
        headers={"content-type": "application/x-msgpack", **accept},
    )
    assert created.status == 201, created.body
    assert created.headers["Content-Type"] == "application/x-msgpack"
    repo = msgpack.unpackb(created.body, raw=False)
    assert repo["fullName"] == "olivia/packed"

    refs = call("GET", "/olivia/songs/refs", headers=accept)
    assert refs.headers["Content-Type"] == "application/x-msgpack"
    assert msgpack.unpackb(refs.body, raw=False)["branch_heads"] == {"main": world.history.head}

    fetch = msgpack.packb({"want": [world.history.head], "have": []}, use_bin_type=True)
    answer = call(
        "POST",
        "/olivia/songs/fetch/mpack",
        raw=fetch,
        headers={"content-type": "application/x-msgpack"},
    )
    assert answer.status == 200 and answer.json()["commits"] == 3

    # Object bytes are not JSON: they come back as they are, whatever Accept says.
    oid, data = next(iter(world.history.blobs.items()))
    raw = call("GET", f"/olivia/songs/objects/{oid}", headers=accept)
    assert raw.status == 200 and raw.body == data

    for undecodable in (
        b"\xc1",
        msgpack.packb({"owner": b"olivia", "name": "x"}, use_bin_type=True),
        msgpack.packb({b"owner": "olivia", "name": "x"}, use_bin_type=True),
    ):
        answer = call(
            "POST",
            "/api/repos",
            raw=undecodable,
            key=world.owner,
            headers={"content-type": "application/x-msgpack"},
        )
        expect_error(answer, 400, "malformed_body")


def test_errors_are_json_even_when_msgpack_is_accepted(world: World) -> None:
    accept = {"accept": "application/x-msgpack"}
    for answer in (
        call("GET", "/olivia/nope/refs", headers=accept),
        call("GET", "/olivia/songs/log", query={"limit": "0"}, headers=accept),
        call("GET", "/no/such/route/at/all", headers=accept),
        call("GET", "/olivia/songs/refs", headers={**accept, "authorization": "MSign x"}),
    ):
        assert answer.status >= 400
        assert answer.headers["Content-Type"].startswith("application/json"), answer.headers
        assert {"code", "message"} <= set(json.loads(answer.body))


def test_an_unexpected_failure_is_still_a_coded_error(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the table went away")

    monkeypatch.setattr(HistoryService, "branch_heads", broken)
    body = expect_error(call("GET", "/olivia/songs/refs"), 500, "internal_error")
    assert "table" not in body["message"]
    monkeypatch.setattr(IdentityStore, "get", broken)
    expect_error(call("GET", "/olivia/songs/log", key=world.owner), 500, "internal_error")


def test_unknown_routes(stack: Provisioned) -> None:
    for method, path in (
        ("GET", "/"),
        ("GET", "/nope"),
        ("GET", "/a/b/c/d/e"),
        ("GET", "/olivia/songs/branches"),
        ("PATCH", "/api/repos"),
        ("POST", "/olivia/songs/refs"),
    ):
        body = expect_error(call(method, path), 404, "no_such_route")
        assert set(body) == {"code", "message", "item"}


def test_initialize_creates_a_root_commit_of_the_empty_tree(stack: Provisioned) -> None:
    owner = identity("olivia")
    created = call(
        "POST", "/api/repos", {"owner": "olivia", "name": "fresh", "initialize": True}, owner
    )
    assert created.status == 201, created.body
    heads = call("GET", "/olivia/fresh/refs").json()["branch_heads"]
    assert list(heads) == ["main"]
    log = call("GET", "/olivia/fresh/log").json()["commits"]
    assert [c["message"] for c in log] == ["Initial commit"]
    assert log[0]["commit_id"] == heads["main"] == CommitRecord.from_dict(log[0]).expected_id()
    snapshot = call("GET", f"/olivia/fresh/snapshots/{log[0]['snapshot_id']}").json()
    assert snapshot["manifest"] == {}
    fetched = call("POST", "/olivia/fresh/fetch/mpack", {"want": [heads["main"]]}).json()
    assert fetched["commits"] == 1 and fetched["objects"] == 0
