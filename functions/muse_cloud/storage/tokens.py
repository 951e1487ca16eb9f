"""Personal access tokens: only the secret's SHA-256 is ever stored.

The token item is the one truth every request reads (strongly consistent, so a revocation holds
from the next request on); the listing item under the identity only lists its token ids. Both
are written in one transaction, so a listed token always exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.tokens import TokenRecord
from muse_cloud.storage import keys
from muse_cloud.storage.backend import NEW_ITEM, ConditionFailed, Equals, Item, Put, Table, Update


def _to_item(record: TokenRecord) -> dict[str, Any]:
    return {
        **keys.token(record.token_id),
        "token_id": record.token_id,
        "identity_id": record.identity_id,
        "name": record.name,
        "scope": record.scope,
        "secret_sha256": record.secret_sha256,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
    }


def _from_item(item: Item) -> TokenRecord:
    expires = item.get("expires_at")
    return TokenRecord(
        token_id=item["token_id"],
        identity_id=item["identity_id"],
        name=item["name"],
        scope=item["scope"],
        secret_sha256=item["secret_sha256"],
        created_at=item["created_at"],
        expires_at=int(expires) if expires is not None else None,
        revoked_at=item.get("revoked_at"),
    )


@dataclass
class TokenStore:
    table: Table

    def create(self, record: TokenRecord) -> None:
        listing = {
            **keys.token_listing(record.identity_id, record.token_id),
            "token_id": record.token_id,
        }
        try:
            self.table.transact([Put(_to_item(record), NEW_ITEM), Put(listing, NEW_ITEM)])
        except ConditionFailed:
            # 64 random bits: a collision is a broken random source, not a user error.
            raise ServiceError(
                "token_id_collision", "token id already taken", record.token_id
            ) from None

    def get(self, token_id: str) -> TokenRecord | None:
        item = self.table.get(keys.token(token_id))
        return _from_item(item) if item else None

    def list_for(self, identity_id: str) -> list[TokenRecord]:
        listed = self.table.query(keys.tokens_of(identity_id), keys.TOKEN_SK)
        records = [
            _from_item(i) for i in self.table.get_many(keys.token(i["token_id"]) for i in listed)
        ]
        return sorted(records, key=lambda r: (r.created_at, r.token_id))

    def revoke(self, identity_id: str, token_id: str, revoked_at: str) -> TokenRecord | None:
        """Mark the identity's token revoked (the first revocation's time stays); None when the
        identity has no such token."""
        try:
            item = self.table.change(
                keys.token(token_id),
                Update(set_if_absent={"revoked_at": revoked_at}),
                Equals("identity_id", identity_id),
                returns="ALL_NEW",
            )
        except ConditionFailed:
            return None
        return _from_item(item) if item else None
