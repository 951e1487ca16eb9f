"""Identities (handle + Ed25519 public key) and the nonces they have used, in DynamoDB.

An identity is two items: IDENT#<identity_id> holds the record and HANDLE#<handle> reserves the
name. Both are written in one transaction, so a handle never points at a missing identity and
two keys can never share a handle.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from muse_cloud import aws
from muse_cloud.auth.edwards import point_problem
from muse_cloud.auth.msign import PUBLIC_KEY_BYTES, b64url_decode, identity_id_for
from muse_cloud.config import settings
from muse_cloud.errors import ServiceError
from muse_cloud.storage import keys

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

NONCE_TTL_SECONDS = 600
BOOTSTRAP_ADMIN_HANDLE = "admin"
_HANDLE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
# The API's own first path segment: a handle of that name would shadow /{owner}/{repo}/... routes.
RESERVED_HANDLES = frozenset({"api", "swagger"})


def validate_handle(handle: str) -> str:
    if not _HANDLE.fullmatch(handle):
        raise ServiceError(
            400,
            "invalid_handle",
            "a handle is 1-40 lowercase letters, digits and inner hyphens",
            handle,
        )
    if handle in RESERVED_HANDLES:
        raise ServiceError(400, "invalid_handle", "that handle is reserved by the API", handle)
    return handle


def validate_public_key(public_key: bytes) -> bytes:
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ServiceError(400, "invalid_public_key", "public key must be 32 raw bytes")
    problem = point_problem(public_key)
    if problem is not None:
        # Named in hex: a non-canonical key has no base64url spelling of its own to echo.
        raise ServiceError(422, "weak_public_key", f"public key is {problem}", public_key.hex())
    return public_key


@dataclass(frozen=True)
class Identity:
    identity_id: str
    handle: str
    public_key: bytes
    is_agent: bool = False
    is_admin: bool = False

    @classmethod
    def from_public_key(
        cls, handle: str, public_key: bytes, *, is_agent: bool = False, is_admin: bool = False
    ) -> Identity:
        return cls(identity_id_for(public_key), handle, public_key, is_agent, is_admin)


@dataclass(frozen=True)
class Caller:
    """Who a request comes from; anonymous callers have neither handle nor identity."""

    handle: str | None
    identity_id: str | None
    is_agent: bool = False
    is_admin: bool = False

    @property
    def is_anonymous(self) -> bool:
        return self.identity_id is None

    @classmethod
    def of(cls, identity: Identity) -> Caller:
        return cls(identity.handle, identity.identity_id, identity.is_agent, identity.is_admin)


ANONYMOUS = Caller(handle=None, identity_id=None)


def _wire(key: keys.Key) -> dict[str, AttributeValueTypeDef]:
    return {name: {"S": value} for name, value in key.items()}


def _cancellation_codes(error: ClientError) -> list[str]:
    reasons: list[Any] = list(error.response.get("CancellationReasons", []))
    return [str(reason.get("Code", "")) for reason in reasons]


class IdentityStore:
    def __init__(self, table_name: str | None = None) -> None:
        self._table_name = table_name

    @property
    def _table(self) -> str:
        return self._table_name or settings().table_name

    @property
    def _client(self) -> DynamoDBClient:
        # Resolved per call: tests and the local stack swap clients via aws.reset_clients().
        return aws.dynamodb()

    def register(self, identity: Identity) -> None:
        validate_handle(identity.handle)
        validate_public_key(identity.public_key)
        if identity.identity_id != identity_id_for(identity.public_key):
            raise ServiceError(
                400, "invalid_identity", "identity_id is not the hash of the public key"
            )
        created_at = datetime.now(UTC).isoformat()
        record: dict[str, AttributeValueTypeDef] = {
            **_wire(keys.identity(identity.identity_id)),
            "identity_id": {"S": identity.identity_id},
            "handle": {"S": identity.handle},
            "public_key": {"B": identity.public_key},
            "is_agent": {"BOOL": identity.is_agent},
            "is_admin": {"BOOL": identity.is_admin},
            "created_at": {"S": created_at},
        }
        reservation: dict[str, AttributeValueTypeDef] = {
            **_wire(keys.handle(identity.handle)),
            "handle": {"S": identity.handle},
            "identity_id": {"S": identity.identity_id},
            "created_at": {"S": created_at},
        }
        # Order matters: cancellation reasons come back per item, identity first, then handle.
        puts: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for item in (record, reservation)
        ]
        try:
            self._client.transact_write_items(TransactItems=puts)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            codes = _cancellation_codes(error)
            if codes and codes[0] == "ConditionalCheckFailed":
                raise ServiceError(
                    409, "identity_exists", "this key is already registered", identity.identity_id
                ) from error
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                raise ServiceError(
                    409, "handle_taken", "this handle belongs to another identity", identity.handle
                ) from error
            raise

    def get(self, identity_id: str) -> Identity | None:
        answer = self._client.get_item(
            TableName=self._table, Key=_wire(keys.identity(identity_id)), ConsistentRead=True
        )
        item = answer.get("Item")
        if not item:
            return None
        return Identity(
            identity_id=item["identity_id"]["S"],
            handle=item["handle"]["S"],
            public_key=bytes(item["public_key"]["B"]),
            is_agent=item["is_agent"]["BOOL"],
            is_admin=item["is_admin"]["BOOL"],
        )

    def by_handle(self, handle: str) -> Identity | None:
        validate_handle(handle)
        answer = self._client.get_item(
            TableName=self._table, Key=_wire(keys.handle(handle)), ConsistentRead=True
        )
        item = answer.get("Item")
        return self.get(item["identity_id"]["S"]) if item else None

    def remember_nonce(
        self,
        identity_id: str,
        nonce: str,
        ttl_seconds: int = NONCE_TTL_SECONDS,
        now: float | None = None,
    ) -> None:
        """Record a nonce as used; 401 ``auth_replayed_nonce`` if it already was.

        ``ttl_seconds`` must cover the whole timestamp window (twice the allowed skew): a
        request stamped at the far future edge stays acceptable that long.
        """
        current = int(time.time() if now is None else now)
        item: dict[str, AttributeValueTypeDef] = {
            **_wire(keys.nonce(identity_id, nonce)),
            "ttl": {"N": str(current + ttl_seconds)},
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                # DynamoDB deletes expired items lazily (up to days late); an expired nonce
                # can no longer be replayed because its timestamp fails the skew check first.
                ConditionExpression="attribute_not_exists(pk) OR #ttl < :now",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={":now": {"N": str(current)}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            raise ServiceError(
                401, "auth_replayed_nonce", "this nonce was already used", nonce
            ) from error

    def ensure_bootstrap_admin(self, public_key_b64url: str) -> Identity:
        """Register the deploy-time admin key as handle ``admin`` unless it already exists.

        Idempotent, also under concurrent deploys: losing the registration race to the same
        key reads back the winner's record.
        """
        try:
            public_key = b64url_decode(public_key_b64url.strip())
        except ValueError as error:
            raise ServiceError(
                400, "invalid_public_key", "bootstrap admin key is not base64url"
            ) from error
        # Before the lookup: a weak key registered before weak keys were refused stays unused.
        validate_public_key(public_key)
        identity = Identity.from_public_key(BOOTSTRAP_ADMIN_HANDLE, public_key, is_admin=True)
        existing = self.get(identity.identity_id)
        if existing is not None:
            return existing
        try:
            self.register(identity)
        except ServiceError as error:
            if error.code != "identity_exists":
                raise
            winner = self.get(identity.identity_id)
            if winner is None:
                raise
            return winner
        return identity
