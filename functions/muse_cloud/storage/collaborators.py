"""Collaborators of a repository: one COLLAB#<handle> item per handle, holding its role."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from muse_cloud import aws
from muse_cloud.auth.permissions import Role, parse_role
from muse_cloud.config import settings
from muse_cloud.storage import keys

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


def _wire(key: keys.Key) -> dict[str, AttributeValueTypeDef]:
    return {name: {"S": value} for name, value in key.items()}


class CollaboratorStore:
    def __init__(self, table_name: str | None = None) -> None:
        self._table_name = table_name

    @property
    def _table(self) -> str:
        return self._table_name or settings().table_name

    @property
    def _client(self) -> DynamoDBClient:
        return aws.dynamodb()

    def set_role(self, repo_id: str, handle: str, role: Role) -> None:
        item: dict[str, AttributeValueTypeDef] = {
            **_wire(keys.collaborator(repo_id, handle)),
            "handle": {"S": handle},
            "role": {"S": parse_role(role)},
        }
        self._client.put_item(TableName=self._table, Item=item)

    def remove(self, repo_id: str, handle: str) -> bool:
        """Drop the handle's role; False when it had none."""
        answer = self._client.delete_item(
            TableName=self._table,
            Key=_wire(keys.collaborator(repo_id, handle)),
            ReturnValues="ALL_OLD",
        )
        return bool(answer.get("Attributes"))

    def role_of(self, repo_id: str, handle: str) -> Role | None:
        answer = self._client.get_item(
            TableName=self._table,
            Key=_wire(keys.collaborator(repo_id, handle)),
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return parse_role(item["role"]["S"]) if item else None

    def list(self, repo_id: str) -> dict[str, Role]:
        """Every collaborator's role, by handle."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": keys.repo_partition(repo_id)},
                ":prefix": {"S": keys.COLLAB_PREFIX},
            },
            "ConsistentRead": True,
        }
        roles: dict[str, Role] = {}
        while True:
            answer = self._client.query(**request)
            for item in answer.get("Items", []):
                roles[item["handle"]["S"]] = parse_role(item["role"]["S"])
            if "LastEvaluatedKey" not in answer:
                return roles
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
