"""Weak Ed25519 keys over the API: refused at registration and as the bootstrap admin, and a
forged ``identity || 0`` signature never authenticates, even for a key stored before."""

from __future__ import annotations

import time

import pytest
from auth.test_weak_keys import IDENTITY, WEAK_KEYS

from muse_cloud.api.statuses import http_status
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import identity_id_for
from muse_cloud.storage import keys
from muse_cloud_cli.signer import b64url_encode, new_identity
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import dynamodb, forget_cached_clients, services, settings, stores

from .client import call
from .test_endpoints import bootstrap_admin, expect_error

_IDS = [key.hex()[:8] + key.hex()[-2:] for key in WEAK_KEYS]


def _forged_header(key_raw: bytes) -> str:
    sig = b64url_encode(key_raw + bytes(32))
    nonce = b64url_encode(time.time_ns().to_bytes(12, "big"))
    return (
        f'MSign keyId="{identity_id_for(key_raw)}",ts="{int(time.time())}",'
        f'nonce="{nonce}",sig="{sig}"'
    )


def test_registration_refuses_every_weak_key(stack: Provisioned) -> None:
    admin = bootstrap_admin()
    for index, weak in enumerate(WEAK_KEYS):
        body = {"handle": f"weak{index}", "public_key": b64url_encode(weak)}
        refused = expect_error(call("POST", "/api/identities", body, admin), 422, "weak_public_key")
        assert refused["item"] == weak.hex(), _IDS[index]
        assert stores().identities.get(identity_id_for(weak)) is None
    sound = new_identity("sound")
    body = {"handle": "sound", "public_key": sound.public_key}
    assert call("POST", "/api/identities", body, admin).status == 201


@pytest.mark.parametrize("weak", WEAK_KEYS, ids=_IDS)
def test_the_bootstrap_admin_refuses_a_weak_key(stack: Provisioned, weak: bytes) -> None:
    with pytest.raises(ServiceError) as caught:
        services().identities.ensure_bootstrap_admin(b64url_encode(weak))
    assert (http_status(caught.value), caught.value.code) == (422, "weak_public_key")
    assert stores().identities.get(identity_id_for(weak)) is None
    assert stores().identities.by_handle("admin") is None


def test_a_weak_bootstrap_key_in_the_environment_never_becomes_admin(
    stack: Provisioned, monkeypatch: pytest.MonkeyPatch
) -> None:
    forget_cached_clients()
    monkeypatch.setenv("MUSE_BOOTSTRAP_ADMIN_PUBLIC_KEY", b64url_encode(IDENTITY))
    try:
        answer = call(
            "GET", "/api/identities/me", headers={"authorization": _forged_header(IDENTITY)}
        )
        expect_error(answer, 401, "auth_unknown_key")
    finally:
        forget_cached_clients()
    assert stores().identities.by_handle("admin") is None


def test_a_weak_key_stored_earlier_is_never_authenticated(stack: Provisioned) -> None:
    """As if registered before weak keys were refused: written straight into the table."""
    for index, weak in enumerate(WEAK_KEYS):
        identity_id = identity_id_for(weak)
        dynamodb().put_item(
            TableName=settings().table_name,
            Item={
                **{name: {"S": value} for name, value in keys.identity(identity_id).items()},
                "identity_id": {"S": identity_id},
                "handle": {"S": f"weak{index}"},
                "public_key": {"B": weak},
                "is_agent": {"BOOL": False},
                "is_admin": {"BOOL": True},
            },
        )
        answer = call("GET", "/api/identities/me", headers={"authorization": _forged_header(weak)})
        expect_error(answer, 401, "auth_bad_signature")
