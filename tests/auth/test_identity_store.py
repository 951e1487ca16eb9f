"""IdentityStore, CollaboratorStore and authenticate() against a moto DynamoDB table."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import boto3
import pytest
from moto import mock_aws

from muse_cloud.api.statuses import http_status
from muse_cloud.auth.authenticate import authenticate
from muse_cloud.auth.msign import b64url_decode
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import ANONYMOUS, Caller, Identity
from muse_cloud.services.identities import IdentityService
from muse_cloud.storage.dynamo import DynamoTable
from muse_cloud.storage.identities import IdentityStore
from muse_cloud.storage.memory import MemoryBucket, MemoryTable
from muse_cloud.storage.stores import Stores
from muse_cloud.storage.tokens import TokenStore
from muse_cloud_cli.signer import KeyFile, new_identity, sign_request

NOW = 1_770_000_000
PATH = "/alice/songs/push/unpack-mpack"
BODY = b'{"mpack_key": "incoming/x"}'
ADMIN = Caller("root", "sha256:" + "0" * 64, is_admin=True)
TABLE = "identities"
_NO_TOKENS = TokenStore(MemoryTable())


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stores]:
    """The stores over one moto DynamoDB table (and a bucket in memory: none is read here)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield Stores.over(DynamoTable(client, TABLE), MemoryBucket())


@pytest.fixture
def store(table: Stores) -> IdentityStore:
    return table.identities


def register(store: IdentityStore, key: KeyFile) -> Identity:
    """Registered as an admin registers it: the handle and the key checked first."""
    return IdentityService(store).register(
        ADMIN, key.handle, key.public_key, is_admin=key.is_admin, is_agent=key.is_agent
    )


def refused(call: Callable[..., object], *args: object, **kwargs: object) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_register_get_and_by_handle(store: IdentityStore) -> None:
    identity = register(store, new_identity("alice", is_agent=True))
    assert store.get(identity.identity_id) == identity
    assert store.by_handle("alice") == identity
    assert store.get("sha256:" + "0" * 64) is None
    assert store.by_handle("nobody") is None


def test_register_conflicts(store: IdentityStore) -> None:
    alice = register(store, new_identity("alice"))
    again = refused(store.register, alice)
    assert (http_status(again), again.code) == (409, "identity_exists")
    taken = refused(register, store, new_identity("alice"))
    assert (http_status(taken), taken.code) == (409, "handle_taken")
    renamed = refused(store.register, Identity.from_public_key("alice2", alice.public_key))
    assert renamed.code == "identity_exists"
    assert store.by_handle("alice2") is None


@pytest.mark.parametrize(
    "handle", ["", "Alice", "-alice", "alice-", "al_ice", "a" * 41, "al ice", "alice/x"]
)
def test_invalid_handles(store: IdentityStore, handle: str) -> None:
    error = refused(register, store, new_identity(handle))
    assert (http_status(error), error.code) == (400, "invalid_handle")


@pytest.mark.parametrize("handle", ["a", "7", "a-b", "a" * 40, "x9-y-0"])
def test_valid_handles(store: IdentityStore, handle: str) -> None:
    register(store, new_identity(handle))
    assert store.by_handle(handle) is not None


def test_register_rejects_inconsistent_identity(store: IdentityStore) -> None:
    key = b64url_decode(new_identity("alice").public_key)
    error = refused(store.register, Identity("sha256:" + "0" * 64, "alice", key))
    assert error.code == "invalid_identity"


def test_remember_nonce(store: IdentityStore) -> None:
    store.remember_nonce("sha256:abc", "n" * 22, now=NOW)
    store.remember_nonce("sha256:def", "n" * 22, now=NOW)
    error = refused(store.remember_nonce, "sha256:abc", "n" * 22, now=NOW + 599)
    assert (http_status(error), error.code) == (401, "auth_replayed_nonce")
    # Past its TTL the item may linger until DynamoDB sweeps it; it must not block the nonce.
    store.remember_nonce("sha256:abc", "n" * 22, now=NOW + 601)
    item = boto3.client("dynamodb").get_item(
        TableName=TABLE,
        Key={"pk": {"S": "NONCE#sha256:abc#" + "n" * 22}, "sk": {"S": "NONCE"}},
    )["Item"]
    assert item["ttl"] == {"N": str(NOW + 601 + 600)}


def test_bootstrap_admin_is_idempotent(store: IdentityStore) -> None:
    key = new_identity("admin", is_admin=True)
    first = IdentityService(store).ensure_bootstrap_admin(key.public_key)
    padded = key.public_key + "=" * (-len(key.public_key) % 4)
    assert IdentityService(store).ensure_bootstrap_admin(padded) == first
    assert IdentityService(store).ensure_bootstrap_admin(key.public_key) == first
    assert first.identity_id == key.identity_id
    assert (first.handle, first.is_admin) == ("admin", True)
    assert store.by_handle("admin") == first


def test_bootstrap_admin_with_another_key_conflicts(store: IdentityStore) -> None:
    IdentityService(store).ensure_bootstrap_admin(new_identity("admin").public_key)
    error = refused(IdentityService(store).ensure_bootstrap_admin, new_identity("admin").public_key)
    assert error.code == "handle_taken"
    assert (
        refused(IdentityService(store).ensure_bootstrap_admin, "not base64!").code
        == "invalid_public_key"
    )


def test_authenticate_round_trip(store: IdentityStore) -> None:
    key = new_identity("alice", is_agent=True)
    identity = register(store, key)
    header = sign_request(key, "POST", PATH, BODY, now=NOW)
    caller = authenticate({"authorization": header}, "POST", PATH, BODY, store, _NO_TOKENS, now=NOW)
    assert caller == Caller("alice", identity.identity_id, is_agent=True, is_admin=False)


def test_authenticate_header_name_is_case_insensitive(store: IdentityStore) -> None:
    key = new_identity("alice")
    register(store, key)
    for name in ("Authorization", "AUTHORIZATION"):
        header = sign_request(key, "GET", "/x", b"", now=NOW)
        assert (
            authenticate({name: header}, "GET", "/x", b"", store, _NO_TOKENS, now=NOW).handle
            == "alice"
        )


def test_unsigned_request_is_anonymous(store: IdentityStore) -> None:
    caller = authenticate({"content-type": "application/json"}, "GET", "/x", b"", store, _NO_TOKENS)
    assert caller is ANONYMOUS


def test_replayed_request(store: IdentityStore) -> None:
    key = new_identity("alice")
    register(store, key)
    headers = {"Authorization": sign_request(key, "POST", PATH, BODY, now=NOW)}
    authenticate(headers, "POST", PATH, BODY, store, _NO_TOKENS, now=NOW)
    error = refused(authenticate, headers, "POST", PATH, BODY, store, _NO_TOKENS, now=NOW + 10)
    assert (http_status(error), error.code) == (401, "auth_replayed_nonce")


def test_bad_signature_does_not_burn_the_nonce(store: IdentityStore) -> None:
    key = new_identity("alice")
    register(store, key)
    headers = {"Authorization": sign_request(key, "POST", PATH, BODY, now=NOW)}
    error = refused(authenticate, headers, "POST", PATH, b"tampered", store, _NO_TOKENS, now=NOW)
    assert error.code == "auth_bad_signature"
    assert authenticate(headers, "POST", PATH, BODY, store, _NO_TOKENS, now=NOW).handle == "alice"


@pytest.mark.parametrize(
    ("make_header", "code"),
    [
        (lambda key: "MSign nonsense", "auth_malformed"),
        (
            lambda key: sign_request(new_identity("mallory"), "GET", "/x", b"", now=NOW),
            "auth_unknown_key",
        ),
        (lambda key: sign_request(key, "GET", "/y", b"", now=NOW), "auth_bad_signature"),
        (lambda key: sign_request(key, "GET", "/x", b"", now=NOW - 301), "auth_stale_timestamp"),
        (lambda key: sign_request(key, "GET", "/x", b"", now=NOW + 301), "auth_stale_timestamp"),
    ],
)
def test_authenticate_refusals(
    store: IdentityStore, make_header: Callable[[KeyFile], str], code: str
) -> None:
    key = new_identity("alice")
    register(store, key)
    header = make_header(key)
    error = refused(
        authenticate, {"authorization": header}, "GET", "/x", b"", store, _NO_TOKENS, now=NOW
    )
    assert (http_status(error), error.code) == (401, code)


def test_collaborators(table: Stores) -> None:
    collaborators = table.collaborators
    assert collaborators.list("repo-1") == {}
    collaborators.set_role("repo-1", "bob", "read")
    collaborators.set_role("repo-1", "carol", "write")
    collaborators.set_role("repo-1", "bob", "admin")
    collaborators.set_role("repo-2", "dave", "read")
    assert collaborators.role_of("repo-1", "bob") == "admin"
    assert collaborators.role_of("repo-1", "dave") is None
    assert collaborators.list("repo-1") == {"bob": "admin", "carol": "write"}
    assert collaborators.remove("repo-1", "bob") is True
    assert collaborators.remove("repo-1", "bob") is False
    assert collaborators.list("repo-1") == {"carol": "write"}
    error = refused(collaborators.set_role, "repo-1", "erin", "owner")
    assert error.code == "invalid_role"
