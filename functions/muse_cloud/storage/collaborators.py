"""Collaborators of a repository: one COLLAB#<handle> item per handle, holding its role."""

from __future__ import annotations

from dataclasses import dataclass

from muse_cloud.domain.roles import Role, parse_role
from muse_cloud.storage import keys
from muse_cloud.storage.backend import Table


@dataclass
class CollaboratorStore:
    table: Table

    def set_role(self, repo_id: str, handle: str, role: Role) -> None:
        self.table.put(
            {**keys.collaborator(repo_id, handle), "handle": handle, "role": parse_role(role)}
        )

    def remove(self, repo_id: str, handle: str) -> bool:
        """Drop the handle's role; False when it had none."""
        return self.table.delete(keys.collaborator(repo_id, handle)) is not None

    def role_of(self, repo_id: str, handle: str) -> Role | None:
        item = self.table.get(keys.collaborator(repo_id, handle))
        return parse_role(item["role"]) if item else None

    def list(self, repo_id: str) -> dict[str, Role]:
        """Every collaborator's role, by handle."""
        items = self.table.query(keys.repo_partition(repo_id), keys.COLLAB_SK)
        return {item["handle"]: parse_role(item["role"]) for item in items}
