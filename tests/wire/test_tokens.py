"""Personal access tokens over real HTTP: each scope against each v0 route, revocation on the
next request, expiry, plain http, and the ``muse-cloud token`` commands."""

from __future__ import annotations

import json
import time
from pathlib import Path

import msgpack
import pytest
import requests

from muse_cloud.auth.tokens import NewToken, secret_sha256
from muse_cloud.domain.tokens import TokenRecord
from muse_cloud.storage.keys import token as token_key
from muse_cloud_cli.client import ClientError, MuseCloudClient
from muse_cloud_cli.main import main
from muse_cloud_cli.tokens import create_token, list_tokens
from muse_cloud_cli.wire_v0_client import WireClient, WireError, bundle_for, push_branch
from muse_cloud_dev.local_stack import LocalStack
from muse_cloud_dev.server import stores

from .conftest import history, new_repo, person, token

READ_ROUTES = {"refs", "fetch", "negotiate", "list tags", "list releases"}


def _routes(head: str, bundle: dict[str, object]) -> dict[str, tuple[str, str, object]]:
    release = {"tag": "v1", "commit_id": head, "channel": "stable", "title": "one"}
    return {
        "refs": ("GET", "refs", None),
        "filter-objects": ("POST", "filter-objects", {"object_ids": [head]}),
        "presign": ("POST", "presign", {"object_ids": [head], "direction": "put"}),
        "push/objects": ("POST", "push/objects", {"objects": []}),
        "push": ("POST", "push", {"bundle": bundle, "branch": "main", "force": False}),
        "fetch": ("POST", "fetch", {"want": [head], "have": [head]}),
        "negotiate": ("POST", "negotiate", {"want": [head], "have": [head]}),
        "tags": ("POST", "tags", {"tags": [{"tag_id": "t1", "commit_id": head, "tag": "x"}]}),
        "list tags": ("GET", "tags", None),
        "releases": ("POST", "releases", release),
        "list releases": ("GET", "releases", None),
        "retract release": ("DELETE", "releases/none-such", None),
    }


def _status(client: WireClient, method: str, path: str, body: object) -> int:
    try:
        client.call(method, path, body if isinstance(body, dict) else None)
    except WireError as error:
        return error.status
    return 200


@pytest.mark.parametrize("scope", ["read", "write", "admin"])
def test_each_scope_against_each_route_of_a_private_repository(
    stack: LocalStack, tmp_path: Path, scope: str
) -> None:
    owner = person(stack, "own")
    remote = new_repo(stack, owner, "private-songs", "private")
    ids = history(tmp_path / "src")
    push_branch(WireClient(remote, token(stack, owner, "write")), tmp_path / "src", "main")
    bundle = bundle_for(tmp_path / "src", ids["merge"], set())

    scoped = WireClient(remote, token(stack, owner, scope))
    stranger = WireClient(remote, token(stack, person(stack, "str"), "admin"))
    anonymous = WireClient(remote)
    for name, (method, path, body) in _routes(ids["merge"], bundle).items():
        allowed = scope != "read" or name in READ_ROUTES
        expected = 404 if name == "retract release" and allowed else 200 if allowed else 403
        assert _status(scoped, method, path, body) == expected, (name, scope)
        # Nobody else learns that the repository exists.
        assert _status(stranger, method, path, body) == 404, name
        assert _status(anonymous, method, path, body) == 404, name


def test_a_token_never_grants_site_admin_rights_below_admin_scope(stack: LocalStack) -> None:
    assert stack.admin is not None
    other = person(stack, "oth")
    remote = new_repo(stack, other, "theirs")
    for scope, expected in (("write", 403), ("admin", 200)):
        client = WireClient(remote, token(stack, stack.admin, scope))
        assert _status(client, "POST", "tags", {"tags": []}) == expected


def test_revocation_holds_from_the_next_request_and_expiry_and_junk_have_their_codes(
    stack: LocalStack,
) -> None:
    owner = person(stack, "rev")
    remote = new_repo(stack, owner, "songs", "private")
    with MuseCloudClient(stack.api_url, owner) as signed:
        created = create_token(signed, "laptop", "read", 30)
        client = WireClient(remote, created["token"])
        assert client.refs()["branch_heads"] == {}
        signed.request("DELETE", f"/api/tokens/{created['token_id']}")
        listed = {t["token_id"]: t for t in list_tokens(signed)}
    with pytest.raises(WireError) as revoked:
        client.refs()
    assert (revoked.value.status, revoked.value.json()["code"]) == (401, "auth_token_revoked")
    assert listed[created["token_id"]]["revoked_at"] is not None
    assert "token" not in listed[created["token_id"]]
    assert created["expires_at"] > time.time() + 29 * 86400

    # Stored hashed: the secret itself is nowhere in the item.
    item = stores().table.get(token_key(created["token_id"]))
    assert item is not None and created["token"] not in json.dumps(item, default=str)
    assert item["secret_sha256"] == secret_sha256(created["token"])

    new = NewToken.generate()
    assert owner.identity_id is not None
    stores().tokens.create(
        TokenRecord(
            new.token_id,
            owner.identity_id,
            "old",
            "read",
            secret_sha256(new.secret),
            "2026-01-01T00:00:00+00:00",
            expires_at=int(time.time()) - 1,
        )
    )
    cases = {
        new.secret: "auth_token_expired",
        new.secret[:-1] + ("A" if new.secret[-1] != "A" else "B"): "auth_unknown_token",
        "mct_not-a-token": "auth_token_malformed",
    }
    for secret, code in cases.items():
        with pytest.raises(WireError) as refused:
            WireClient(remote, secret).refs()
        assert (refused.value.status, refused.value.json()["code"]) == (401, code)


def test_a_token_over_plain_http_to_a_non_loopback_host_is_refused(stack: LocalStack) -> None:
    owner = person(stack, "tls")
    remote = new_repo(stack, owner, "songs")
    headers = {"Authorization": f"Bearer {token(stack, owner, 'read')}"}
    refused = requests.get(
        f"{remote}/refs", headers={**headers, "Host": "muse.example"}, timeout=30
    )
    assert refused.status_code == 401 and refused.json()["code"] == "auth_token_needs_https"
    behind_tls = {**headers, "Host": "muse.example", "X-Forwarded-Proto": "https"}
    assert requests.get(f"{remote}/refs", headers=behind_tls, timeout=30).status_code == 200
    # Without a token, plain http is anyone's business.
    assert requests.get(f"{remote}/refs", headers={"Host": "muse.example"}, timeout=30).ok


def test_only_the_key_manages_tokens(stack: LocalStack) -> None:
    owner = person(stack, "key")
    bearer = {"Authorization": f"Bearer {token(stack, owner, 'admin')}"}
    made = requests.post(
        f"{stack.api_url}/api/tokens", json={"scope": "admin"}, headers=bearer, timeout=30
    )
    assert made.status_code == 403 and made.json()["code"] == "token_cannot_manage_tokens"
    anonymous = requests.get(f"{stack.api_url}/api/tokens", timeout=30)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "auth_required"
    with MuseCloudClient(stack.api_url, owner) as signed:
        with pytest.raises(ClientError) as bad_expiry:
            create_token(signed, "x", "read", 0)
        assert bad_expiry.value.code == "invalid_expiry"
        with pytest.raises(ClientError) as bad_scope:
            signed.request("POST", "/api/tokens", {"scope": "root"})
        assert bad_scope.value.status == 422
        with pytest.raises(ClientError) as foreign:
            signed.request("DELETE", "/api/tokens/0123456789abcdef")
        assert foreign.value.status == 404


def test_token_commands_print_the_token_last_then_list_and_revoke(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    owner = person(stack, "cli")
    key_file = tmp_path / "key.json"
    owner.save(key_file)
    remote = new_repo(stack, owner, "songs")
    common = ["--identity", str(key_file), "--server", stack.api_url]
    assert main(["token", "create", *common, "--name", "ci", "--scope", "read"]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    answer = WireClient(remote, secret).call("GET", "refs")
    assert answer["default_branch"] == "main"

    assert main(["token", "list", *common]) == 0
    listing = capsys.readouterr().out
    token_id = secret.split("_")[1]
    assert token_id in listing and "read" in listing and secret not in listing
    assert main(["token", "revoke", *common, token_id]) == 0
    assert token_id in capsys.readouterr().out
    with pytest.raises(WireError):
        WireClient(remote, secret).refs()
    assert main(["token", "revoke", *common, "ffffffffffffffff"]) == 1
    assert "not_found" in capsys.readouterr().err


def test_answers_are_msgpack_even_for_refs(stack: LocalStack) -> None:
    owner = person(stack, "mp")
    remote = new_repo(stack, owner, "songs")
    answer = requests.get(
        f"{remote}/refs", headers={"Accept": "application/x-msgpack, application/json"}, timeout=30
    )
    assert msgpack.unpackb(answer.content)["default_branch"] == "main"
