"""Collaborators of a repository: one COLLAB#<handle> item per handle, holding its role."""

from __future__ import annotations

from muse_cloud import aws
from muse_cloud.auth.permissions import Role, parse_role
from muse_cloud.storage import dynamo, keys


class CollaboratorStore:
    def set_role(self, repo_id: str, handle: str, role: Role) -> None:
        dynamo.put_item(
            {**keys.collaborator(repo_id, handle), "handle": handle, "role": parse_role(role)}
        )

    def remove(self, repo_id: str, handle: str) -> bool:
        """Drop the handle's role; False when it had none."""
        answer = aws.dynamodb().delete_item(
            TableName=dynamo.table(),
            Key=dynamo.to_wire(keys.collaborator(repo_id, handle)),
            ReturnValues="ALL_OLD",
        )
        return bool(answer.get("Attributes"))

    def role_of(self, repo_id: str, handle: str) -> Role | None:
        item = dynamo.get_item(keys.collaborator(repo_id, handle))
        return parse_role(item["role"]) if item else None

    def list(self, repo_id: str) -> dict[str, Role]:
        """Every collaborator's role, by handle."""
        items = dynamo.query_prefix(keys.repo_partition(repo_id), keys.COLLAB_PREFIX)
        return {item["handle"]: parse_role(item["role"]) for item in items}
