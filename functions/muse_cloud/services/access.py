"""Finding a repository for a caller: the permission check comes with the lookup, so no route
can reach a repository's data without it, and an unreadable repository looks like no repository."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from muse_cloud.auth.permissions import (
    RepoAccess,
    can_admin,
    can_write,
    require_admin,
    require_read,
    require_write,
)
from muse_cloud.domain.errors import ServiceError, not_found
from muse_cloud.domain.identities import Caller
from muse_cloud.domain.names import validate_repo_name
from muse_cloud.domain.pushes import Pusher
from muse_cloud.domain.repos import Repo
from muse_cloud.storage.collaborators import CollaboratorStore
from muse_cloud.storage.repos import RepoStore

Need = Literal["read", "write", "admin"]
# Repository ids are str(uuid.uuid4()): canonical, lowercase.
_REPO_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CHECKS = {"read": require_read, "write": require_write, "admin": require_admin}


@dataclass
class RepoAccessService:
    repos: RepoStore
    collaborators: CollaboratorStore

    def by_slug(self, caller: Caller, owner: str, name: str, need: Need) -> Repo:
        # A slug no repository could have is never looked up: an unchecked path segment in a
        # key can exceed DynamoDB's key size and fail the request with a 500.
        try:
            validate_repo_name(owner, name)
        except ServiceError:
            repo = None
        else:
            repo = self.repos.by_slug(owner, name)
        return self._checked(caller, repo, f"{owner}/{name}", need)

    def by_id(self, caller: Caller, repo_id: str, need: Need) -> Repo:
        repo = self.repos.get(repo_id) if _REPO_ID.fullmatch(repo_id) else None
        return self._checked(caller, repo, repo_id, need)

    def may_push(self, caller: Caller, repo: Repo) -> bool:
        return can_write(caller, self._access(caller, repo))

    def pusher(self, caller: Caller, repo: Repo) -> Pusher:
        """The caller as a push records it: whether rules for admins only let it through."""
        return Pusher(caller.handle, can_admin(caller, self._access(caller, repo)))

    def _access(self, caller: Caller, repo: Repo) -> RepoAccess:
        role = None
        if caller.handle and caller.handle != repo.owner:
            role = self.collaborators.role_of(repo.repo_id, caller.handle)
        return RepoAccess(owner=repo.owner, visibility=repo.visibility, collaborator_role=role)

    def _checked(self, caller: Caller, repo: Repo | None, item: str, need: Need) -> Repo:
        if repo is None:
            raise not_found("repository", item)
        _CHECKS[need](caller, self._access(caller, repo), item)
        return repo
