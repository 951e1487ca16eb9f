"""Identities (handle + Ed25519 public key) and the nonces they have used.

An identity is two items: IDENT#<identity_id> holds the record and HANDLE#<handle> reserves the
name. Both are written in one transaction, so a handle never points at a missing identity and
two keys can never share a handle. Whether a handle or a key is acceptable is the service's
question; the store keeps them unique.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import Identity, identity_id_for
from muse_cloud.storage import keys
from muse_cloud.storage.backend import (
    NEW_ITEM,
    Below,
    ConditionFailed,
    Item,
    Put,
    Table,
    any_of,
)

NONCE_TTL_SECONDS = 600


@dataclass
class IdentityStore:
    table: Table

    def register(self, identity: Identity) -> None:
        if identity.identity_id != identity_id_for(identity.public_key):
            raise ServiceError("invalid_identity", "identity_id is not the hash of the public key")
        created_at = datetime.now(UTC).isoformat()
        record = {
            **keys.identity(identity.identity_id),
            "identity_id": identity.identity_id,
            "handle": identity.handle,
            "public_key": identity.public_key,
            "is_agent": identity.is_agent,
            "is_admin": identity.is_admin,
            "created_at": created_at,
        }
        reservation = {
            **keys.handle(identity.handle),
            "handle": identity.handle,
            "identity_id": identity.identity_id,
            "created_at": created_at,
        }
        try:
            # Order matters: cancellation reasons come back per action, identity first.
            self.table.transact([Put(record, NEW_ITEM), Put(reservation, NEW_ITEM)])
        except ConditionFailed as failed:
            if failed.failed_at(1) and not failed.failed_at(0):
                raise ServiceError(
                    "handle_taken", "this handle belongs to another identity", identity.handle
                ) from None
            raise ServiceError(
                "identity_exists", "this key is already registered", identity.identity_id
            ) from None

    def get(self, identity_id: str) -> Identity | None:
        item = self.table.get(keys.identity(identity_id))
        return _identity(item) if item else None

    def by_handle(self, handle: str) -> Identity | None:
        item = self.table.get(keys.handle(handle))
        return self.get(item["identity_id"]) if item else None

    def remember_nonce(
        self,
        identity_id: str,
        nonce: str,
        ttl_seconds: int = NONCE_TTL_SECONDS,
        now: float | None = None,
    ) -> None:
        """Record a nonce as used; ``auth_replayed_nonce`` if it already was.

        ``ttl_seconds`` must cover the whole timestamp window (twice the allowed skew): a
        request stamped at the far future edge stays acceptable that long.
        """
        current = int(time.time() if now is None else now)
        item = {**keys.nonce(identity_id, nonce), "ttl": current + ttl_seconds}
        try:
            # DynamoDB deletes expired items lazily (up to days late); an expired nonce can no
            # longer be replayed because its timestamp fails the skew check first.
            self.table.put(item, any_of(NEW_ITEM, Below("ttl", current)))
        except ConditionFailed:
            raise ServiceError(
                "auth_replayed_nonce", "this nonce was already used", nonce
            ) from None


def _identity(item: Item) -> Identity:
    return Identity(
        identity_id=item["identity_id"],
        handle=item["handle"],
        public_key=bytes(item["public_key"]),
        is_agent=bool(item["is_agent"]),
        is_admin=bool(item["is_admin"]),
    )
