"""MSign through the API (protocol section 5): each 401 code, and signatures that do not cover
the request that carries them."""

from __future__ import annotations

import json
import re
import time

import pytest

from muse_cloud_cli.signer import KeyFile, new_identity, sign_request
from muse_cloud_dev.provision import Provisioned

from .client import call
from .test_endpoints import create_repo, expect_error, identity

REFS = "/olivia/songs/refs"


@pytest.fixture
def olivia(stack: Provisioned) -> KeyFile:
    key = identity("olivia")
    create_repo(key, "songs", "private")
    return key


def _auth(header: str) -> dict[str, str]:
    return {"authorization": header}


def _with_key_id(header: str, key_id: str) -> str:
    return re.sub(r'keyId="[^"]*"', f'keyId="{key_id}"', header)


def test_a_signed_request_is_the_caller(olivia: KeyFile) -> None:
    assert call("GET", REFS, key=olivia).status == 200
    header = sign_request(olivia, "GET", REFS, b"")
    assert call("GET", REFS, headers=_auth(header)).status == 200
    expect_error(call("GET", REFS), 404, "not_found")


def test_malformed_authorization(olivia: KeyFile) -> None:
    valid = sign_request(olivia, "GET", REFS, b"")
    fields = dict(re.findall(r'(\w+)="([^"]*)"', valid))

    def variant(name: str, value: str) -> str:
        return valid.replace(f'{name}="{fields[name]}"', f'{name}="{value}"')

    headers = [
        "",
        # (Bearer is a scheme of its own now: tests/wire/test_tokens.py)
        "MSign",
        'MSign keyId="sha256:00"',
        "MSign keyId=sha256:abc,ts=1,nonce=x,sig=y",
        valid + " extra",
        valid + ',extra="1"',
        valid + f',keyId="{olivia.identity_id}"',
        valid.rsplit(",", 1)[0],
        valid.replace("MSign", "Basic"),
        variant("keyId", "sha256:" + "A" * 64),
        variant("keyId", olivia.identity_id.removeprefix("sha256:")),
        variant("ts", "soon"),
        variant("ts", "-5"),
        variant("nonce", "short"),
        variant("nonce", "has spaces in the nonce"),
        variant("nonce", "n" * 129),
        variant("sig", "not*base64"),
        variant("sig", "AAAA"),
        "MSign " + "x" * 2000,
    ]
    for header in headers:
        answer = call("GET", REFS, headers=_auth(header))
        assert answer.status == 401, (header, answer.body)
        expect_error(answer, 401, "auth_malformed")


def test_unknown_key(olivia: KeyFile) -> None:
    stranger = new_identity("stranger")
    body = expect_error(call("GET", REFS, key=stranger), 401, "auth_unknown_key")
    assert body["item"] == stranger.identity_id
    # Even on a route an anonymous caller could use: a bad signature is not anonymity.
    expect_error(call("GET", "/api/identities/me", key=stranger), 401, "auth_unknown_key")


def test_bad_signature(olivia: KeyFile) -> None:
    impostor = new_identity("olivia")
    forged = _with_key_id(sign_request(impostor, "GET", REFS, b""), olivia.identity_id)
    expect_error(call("GET", REFS, headers=_auth(forged)), 401, "auth_bad_signature")


@pytest.mark.parametrize("skew", [-301 - 60, 301 + 60])
def test_stale_timestamp(olivia: KeyFile, skew: int) -> None:
    header = sign_request(olivia, "GET", REFS, b"", now=time.time() + skew)
    expect_error(call("GET", REFS, headers=_auth(header)), 401, "auth_stale_timestamp")


def test_a_timestamp_inside_the_window_is_accepted(olivia: KeyFile) -> None:
    for skew in (-240, 240):
        header = sign_request(olivia, "GET", REFS, b"", now=time.time() + skew)
        assert call("GET", REFS, headers=_auth(header)).status == 200


def test_replayed_nonce(olivia: KeyFile) -> None:
    header = sign_request(olivia, "GET", REFS, b"")
    assert call("GET", REFS, headers=_auth(header)).status == 200
    body = expect_error(call("GET", REFS, headers=_auth(header)), 401, "auth_replayed_nonce")
    assert body["item"] in header


def test_a_nonce_is_spent_across_routes(olivia: KeyFile) -> None:
    nonce = "n" * 24
    first = sign_request(olivia, "GET", REFS, b"", nonce=nonce)
    assert call("GET", REFS, headers=_auth(first)).status == 200
    other = sign_request(olivia, "GET", "/api/identities/me", b"", nonce=nonce)
    answer = call("GET", "/api/identities/me", headers=_auth(other))
    expect_error(answer, 401, "auth_replayed_nonce")


def test_a_refused_signature_does_not_spend_the_nonce(olivia: KeyFile) -> None:
    nonce = "m" * 24
    impostor = new_identity("olivia")
    forged = _with_key_id(sign_request(impostor, "GET", REFS, b"", nonce=nonce), olivia.identity_id)
    expect_error(call("GET", REFS, headers=_auth(forged)), 401, "auth_bad_signature")
    genuine = sign_request(olivia, "GET", REFS, b"", nonce=nonce)
    assert call("GET", REFS, headers=_auth(genuine)).status == 200


def test_a_body_changed_after_signing(olivia: KeyFile) -> None:
    signed = json.dumps({"owner": "olivia", "name": "tunes"}).encode()
    sent = json.dumps({"owner": "olivia", "name": "tunes", "visibility": "private"}).encode()
    header = sign_request(olivia, "POST", "/api/repos", signed)
    answer = call("POST", "/api/repos", raw=sent, headers=_auth(header))
    expect_error(answer, 401, "auth_bad_signature")
    # The same header with the body it was made for still works (its nonce was not spent).
    assert call("POST", "/api/repos", raw=signed, headers=_auth(header)).status == 201


def test_a_signature_made_for_another_request(olivia: KeyFile) -> None:
    create_repo(olivia, "other", "private")
    cases = [
        # (signed method, signed target, sent method, sent path, sent query)
        ("GET", "/olivia/other/refs", "GET", REFS, None),
        ("GET", REFS + "/", "GET", REFS, None),
        ("GET", "/olivia/songs/log?limit=1", "GET", "/olivia/songs/log", {"limit": "2"}),
        ("GET", "/olivia/songs/log", "GET", "/olivia/songs/log", {"limit": "2"}),
        (
            "GET",
            "/api/repos/by-slug/olivia/songs",
            "DELETE",
            "/api/repos/by-slug/olivia/songs",
            None,
        ),
        ("POST", REFS, "GET", REFS, None),
    ]
    for signed_method, target, method, path, query in cases:
        header = sign_request(olivia, signed_method, target, b"")
        answer = call(method, path, headers=_auth(header), query=query)
        expect_error(answer, 401, "auth_bad_signature")
    # Signed over what is sent, query included, the same requests pass.
    assert call("GET", REFS, key=olivia, query={"limit": "2"}).status == 200
