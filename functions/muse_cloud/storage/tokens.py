"""Personal access tokens in DynamoDB: only the secret's SHA-256 is ever stored.

| item          | pk                          | sk               |
|---------------|-----------------------------|------------------|
| token         | TOKEN#<token_id>            | TOKEN            |
| owner's index | TOKENS#<identity_id>        | TOKEN#<token_id> |

The token item is the one truth every request reads (strongly consistent, so a revocation holds
from the next request on); the index only lists an identity's token ids. Both are written in one
transaction, so a listed token always exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from muse_cloud import aws
from muse_cloud.auth.permissions import Role
from muse_cloud.errors import ServiceError
from muse_cloud.storage import dynamo, keys

INDEX_PREFIX = "TOKEN#"


def token_key(token_id: str) -> keys.Key:
    return {"pk": f"TOKEN#{token_id}", "sk": "TOKEN"}


def owner_index_key(identity_id: str, token_id: str) -> keys.Key:
    return {"pk": f"TOKENS#{identity_id}", "sk": f"{INDEX_PREFIX}{token_id}"}


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    identity_id: str
    name: str
    scope: Role
    secret_sha256: str
    created_at: str
    expires_at: int | None = None
    revoked_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """What a listing shows: everything but the secret's hash."""
        return {
            "token_id": self.token_id,
            "name": self.name,
            "scope": self.scope,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
        }


def _to_item(record: TokenRecord) -> dict[str, Any]:
    return {
        **token_key(record.token_id),
        "token_id": record.token_id,
        "identity_id": record.identity_id,
        "name": record.name,
        "scope": record.scope,
        "secret_sha256": record.secret_sha256,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
    }


def _from_item(item: dynamo.Item) -> TokenRecord:
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


class TokenStore:
    def create(self, record: TokenRecord) -> None:
        index = {
            **owner_index_key(record.identity_id, record.token_id),
            "token_id": record.token_id,
        }
        try:
            aws.dynamodb().transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": dynamo.table(),
                            "Item": dynamo.to_wire(item),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                    for item in (_to_item(record), index)
                ]
            )
        except ClientError as error:
            if dynamo.is_conditional_failure(error):
                # 64 random bits: a collision is a broken random source, not a user error.
                raise ServiceError(
                    500, "token_id_collision", "token id already taken", record.token_id
                ) from None
            raise

    def get(self, token_id: str) -> TokenRecord | None:
        item = dynamo.get_item(token_key(token_id))
        return _from_item(item) if item else None

    def list_for(self, identity_id: str) -> list[TokenRecord]:
        ids = [i["token_id"] for i in dynamo.query_prefix(f"TOKENS#{identity_id}", INDEX_PREFIX)]
        records = [_from_item(i) for i in dynamo.batch_get(token_key(t) for t in ids)]
        return sorted(records, key=lambda r: (r.created_at, r.token_id))

    def revoke(self, identity_id: str, token_id: str, revoked_at: str) -> TokenRecord | None:
        """Mark the identity's token revoked (the first revocation's time stays); None when the
        identity has no such token."""
        try:
            answer = aws.dynamodb().update_item(
                TableName=dynamo.table(),
                Key=dynamo.to_wire(token_key(token_id)),
                UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :now)",
                ConditionExpression="identity_id = :owner",
                ExpressionAttributeValues={":now": {"S": revoked_at}, ":owner": {"S": identity_id}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if dynamo.is_conditional_failure(error):
                return None
            raise
        return _from_item(dynamo.from_wire(answer["Attributes"]))
