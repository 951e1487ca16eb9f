"""Finding a repository for a caller: the permission check comes with the lookup, so no route
can reach a repository's data without it, and an unreadable repository looks like no repository."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from muse_cloud.auth.identities import Caller
from muse_cloud.auth.permissions import RepoAccess, require_admin, require_read, require_write
from muse_cloud.errors import not_found
from muse_cloud.storage.collaborators import CollaboratorStore
from muse_cloud.storage.repos import Repo, RepoStore

Need = Literal["read", "write", "admin"]
_CHECKS = {"read": require_read, "write": require_write, "admin": require_admin}


@dataclass
class RepoAccessService:
    repos: RepoStore = field(default_factory=RepoStore)
    collaborators: CollaboratorStore = field(default_factory=CollaboratorStore)

    def by_slug(self, caller: Caller, owner: str, name: str, need: Need) -> Repo:
        return self._checked(caller, self.repos.by_slug(owner, name), f"{owner}/{name}", need)

    def by_id(self, caller: Caller, repo_id: str, need: Need) -> Repo:
        return self._checked(caller, self.repos.get(repo_id), repo_id, need)

    def _checked(self, caller: Caller, repo: Repo | None, item: str, need: Need) -> Repo:
        if repo is None:
            raise not_found("repository", item)
        role = None
        if caller.handle and caller.handle != repo.owner:
            role = self.collaborators.role_of(repo.repo_id, caller.handle)
        access = RepoAccess(owner=repo.owner, visibility=repo.visibility, collaborator_role=role)
        _CHECKS[need](caller, access, item)
        return repo
