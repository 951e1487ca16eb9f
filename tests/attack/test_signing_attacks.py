"""MSign under attack through the API handler: tampered requests, replays, skewed clocks, other
identities' key ids, unknown keys, small-order public keys and non-canonical signatures."""

from __future__ import annotations

import re
import time

import pytest
from api.client import Answer, call
from api.test_endpoints import bootstrap_admin, create_repo, identity
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from muse_cloud.api.statuses import http_status
from muse_cloud.auth.msign import canonical_string
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import Identity, identity_id_for
from muse_cloud.storage import dynamo, keys
from muse_cloud_cli.signer import KeyFile, b64url_decode, b64url_encode, new_identity, sign_request
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import dynamodb, services, settings, stores

from .outcomes import coded_4xx
from .profile import attack_settings

LOG = "/olivia/songs/log"
# The order of Ed25519's prime subgroup.
L = 2**252 + 27742317777372353535851937790883648493
# The eight points of the curve's torsion subgroup (orders 1, 2, 4 and 8), as public keys: for
# each, a signature made without any private key verifies for some share of messages.
SMALL_ORDER_KEYS = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
]


@pytest.fixture
def olivia(stack: Provisioned) -> KeyFile:
    key = identity("olivia")
    create_repo(key, "songs")
    return key


def _header(answer_for: str, name: str, value: str) -> str:
    return re.sub(rf'{name}="[^"]*"', f'{name}="{value}"', answer_for)


def refused(answer: Answer, *codes: str) -> str:
    code = coded_4xx(answer)
    assert answer.status == 401 and code in codes, (answer.status, answer.body)
    return code


TAMPERED_PART = st.sampled_from(["method", "path", "query", "body", "ts", "nonce", "sig"])


@attack_settings(20)
@given(part=TAMPERED_PART, salt=st.text(alphabet="abcxyz019", min_size=1, max_size=6))
def test_a_request_changed_after_signing_is_refused(olivia: KeyFile, part: str, salt: str) -> None:
    body = b'{"want": [], "have": []}'
    path, query = "/olivia/songs/fetch/mpack", "limit=1"
    header = sign_request(olivia, "POST", f"{path}?{query}", body)
    method, sent_query, sent_body = "POST", {"limit": "1"}, body
    if part == "method":
        method = "PUT"
    elif part == "path":
        path = path.replace("songs", "songs" + salt)
    elif part == "query":
        sent_query = {"limit": "1" + salt}
    elif part == "body":
        sent_body = body.replace(b"[]", f'["{salt}"]'.encode(), 1)
    else:
        fields = dict(re.findall(r'(\w+)="([^"]*)"', header))
        changed = {
            "ts": str(int(fields["ts"]) - 1 - len(salt)),
            "nonce": fields["nonce"] + "x" * len(salt),
            "sig": b64url_encode(bytes(64 - len(salt)) + salt.encode()),
        }[part]
        header = _header(header, {"ts": "ts", "nonce": "nonce", "sig": "sig"}[part], changed)
    answer = call(method, path, headers={"authorization": header}, query=sent_query, raw=sent_body)
    refused(answer, "auth_bad_signature")


def test_a_replayed_write_is_refused_and_has_no_effect(olivia: KeyFile) -> None:
    body = b'{"owner": "olivia", "name": "once"}'
    header = {"authorization": sign_request(olivia, "POST", "/api/repos", body)}
    assert call("POST", "/api/repos", headers=header, raw=body).status == 201
    for _ in range(3):
        refused(call("POST", "/api/repos", headers=header, raw=body), "auth_replayed_nonce")


@attack_settings(12)
@given(skew=st.integers(min_value=-3600, max_value=3600))
def test_a_skewed_clock_is_refused_outside_the_window(olivia: KeyFile, skew: int) -> None:
    header = sign_request(olivia, "GET", LOG, b"", now=time.time() + skew)
    answer = call("GET", LOG, headers={"authorization": header})
    if abs(skew) > 302:  # the window is 300 s; two seconds for the time the test takes
        refused(answer, "auth_stale_timestamp")
    elif abs(skew) < 298:
        assert answer.status == 200, answer.body


def test_another_identitys_key_id_is_refused(olivia: KeyFile) -> None:
    mallory = identity("mallory")
    forged = _header(
        sign_request(mallory, "GET", "/api/identities/me", b""), "keyId", olivia.identity_id
    )
    refused(
        call("GET", "/api/identities/me", headers={"authorization": forged}), "auth_bad_signature"
    )


def test_an_unknown_key_is_refused(olivia: KeyFile) -> None:
    stranger = new_identity("olivia")
    answer = call("GET", LOG, key=stranger)
    assert refused(answer, "auth_unknown_key") and answer.json()["item"] == stranger.identity_id


def test_a_non_canonical_signature_is_refused(olivia: KeyFile) -> None:
    header = sign_request(olivia, "GET", "/api/identities/me", b"")
    fields = dict(re.findall(r'(\w+)="([^"]*)"', header))
    signature = b64url_decode(fields["sig"])
    s = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s + L).to_bytes(32, "little")
    forged = _header(header, "sig", b64url_encode(malleated))
    refused(
        call("GET", "/api/identities/me", headers={"authorization": forged}), "auth_bad_signature"
    )
    # The untouched signature (its nonce not spent by the refusal) still passes.
    assert call("GET", "/api/identities/me", headers={"authorization": header}).status == 200


def test_no_small_order_key_is_registered(stack: Provisioned) -> None:
    admin = bootstrap_admin()
    registered = []
    for n, point in enumerate(SMALL_ORDER_KEYS):
        body = {"handle": f"torsion{n}", "public_key": b64url_encode(bytes.fromhex(point))}
        answer = call("POST", "/api/identities", body, admin)
        if not 400 <= answer.status < 500:
            registered.append((point, answer.status))
        else:
            coded_4xx(answer)
    assert not registered, f"{len(registered)} of 8 small-order keys registered: {registered}"


def test_no_small_order_key_becomes_the_bootstrap_admin(stack: Provisioned) -> None:
    accepted = []
    for point in SMALL_ORDER_KEYS:
        try:
            services().identities.ensure_bootstrap_admin(b64url_encode(bytes.fromhex(point)))
        except ServiceError as refusal:
            assert 400 <= http_status(refusal) < 500
        else:
            accepted.append(point)
            # The next point gets its own try at the empty ``admin`` handle.
            for key in (keys.handle("admin"), keys.identity(identity_id_for(bytes.fromhex(point)))):
                dynamodb().delete_item(TableName=settings().table_name, Key=dynamo.to_wire(key))
    assert not accepted, f"{len(accepted)} of 8 small-order keys became the bootstrap admin"


def _forged_without_private_key(public_key: bytes, method: str, target: str) -> str:
    """A header whose signature (R = the identity point, S = 0) verifies for this key: the
    nonce is ground until it does, as an attacker would."""
    signature = (1).to_bytes(32, "little") + bytes(32)
    key = Ed25519PublicKey.from_public_bytes(public_key)
    ts = str(int(time.time()))
    for attempt in range(512):
        nonce = f"torsion{attempt:09d}"
        try:
            key.verify(signature, canonical_string(method, target, ts, nonce, b""))
        except InvalidSignature:
            continue
        return (
            f'MSign keyId="{identity_id_for(public_key)}",ts="{ts}",nonce="{nonce}",'
            f'sig="{b64url_encode(signature)}"'
        )
    raise AssertionError("no nonce made the forged signature verify")


def test_nobody_signs_as_a_small_order_key(stack: Provisioned) -> None:
    forged = []
    for n, point in enumerate(SMALL_ORDER_KEYS):
        raw = bytes.fromhex(point)
        try:
            stores().identities.register(
                Identity.from_public_key(f"torsion{n}", raw, is_admin=True)
            )
        except ServiceError as refusal:
            assert 400 <= http_status(refusal) < 500
            continue  # refused where it is stored: nobody can sign as it
        header = _forged_without_private_key(raw, "GET", "/api/identities/me")
        answer = call("GET", "/api/identities/me", headers={"authorization": header})
        if answer.status == 200:
            forged.append((point, answer.json()["handle"]))
        else:
            refused(answer, "auth_bad_signature", "auth_unknown_key")
    assert not forged, f"requests signed without a private key passed for {len(forged)} of 8 keys"
