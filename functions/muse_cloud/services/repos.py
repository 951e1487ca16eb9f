"""Repositories and their collaborators: the administrative operations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from muse_cloud.auth.permissions import require_create
from muse_cloud.domain.errors import ServiceError, not_found
from muse_cloud.domain.events import PushCounts
from muse_cloud.domain.identities import Caller
from muse_cloud.domain.names import validate_handle, validate_repo_name
from muse_cloud.domain.pushes import Pusher
from muse_cloud.domain.repos import Repo, Visibility
from muse_cloud.domain.roles import Role
from muse_cloud.services.access import RepoAccessService
from muse_cloud.services.ref_changes import RefChanges
from muse_cloud.storage.commits import StoredCommit
from muse_cloud.storage.refs import RefUpdate
from muse_cloud.storage.stores import Stores
from muse_core.commits import CommitRecord
from muse_core.snapshot import compute_snapshot_id
from muse_core.verify import VerifiedSnapshot


@dataclass
class RepoService:
    stores: Stores
    access: RepoAccessService

    def create(
        self,
        caller: Caller,
        owner: str,
        name: str,
        visibility: Visibility,
        initialize: bool,
        domain: str = "code",
    ) -> Repo:
        require_create(caller, owner)
        validate_repo_name(owner, name)
        repo = self.stores.repos.create(owner, name, visibility, domain)
        if initialize:
            self._initial_commit(repo, caller)
        return repo

    def _initial_commit(self, repo: Repo, caller: Caller) -> None:
        """A root commit of the empty tree on the default branch, as a hosted 'initialize'."""
        empty = compute_snapshot_id({})
        record = CommitRecord.create(
            snapshot_id=empty,
            message="Initial commit",
            committed_at=datetime.now(UTC).isoformat(),
            repo_id=repo.repo_id,
            branch=repo.default_branch,
            author=caller.handle or "",
        )
        snapshot = VerifiedSnapshot(empty, None, {}, [], 0, manifest={})
        self.stores.snapshots.put_many(repo.repo_id, [snapshot], {empty: ()})
        self.stores.commits.put_many(repo.repo_id, [StoredCommit(record, generation=1)])
        update = RefUpdate(repo.default_branch, None, record.commit_id)
        RefChanges(self.stores).move(
            repo.repo_id,
            [update],
            push_id="initialize",
            by=Pusher(caller.handle, admin=True),
            counts=PushCounts(commits=1, snapshots=1),
        )

    def get(self, caller: Caller, repo_id: str) -> Repo:
        return self.access.by_id(caller, repo_id, "read")

    def by_slug(self, caller: Caller, owner: str, name: str) -> Repo:
        return self.access.by_slug(caller, owner, name, "read")

    def delete(self, caller: Caller, repo_id: str) -> None:
        repo = self.access.by_id(caller, repo_id, "admin")
        self.stores.repos.delete(repo)
        # Unreachable from here on (every key carries the repo_id); free the bytes as well.
        self.stores.packs.delete_repository(repo.repo_id)

    def set_collaborator(self, caller: Caller, repo_id: str, handle: str, role: Role) -> None:
        repo = self.access.by_id(caller, repo_id, "admin")
        validate_handle(handle)
        if handle == repo.owner:
            raise ServiceError("owner_is_not_collaborator", "the owner has every right", handle)
        self.stores.collaborators.set_role(repo.repo_id, handle, role)

    def remove_collaborator(self, caller: Caller, repo_id: str, handle: str) -> None:
        repo = self.access.by_id(caller, repo_id, "admin")
        # Checked before it goes into a key, as set_collaborator does.
        validate_handle(handle)
        if not self.stores.collaborators.remove(repo.repo_id, handle):
            raise not_found("collaborator", handle)

    def list_collaborators(self, caller: Caller, repo_id: str) -> dict[str, Role]:
        repo = self.access.by_id(caller, repo_id, "admin")
        return self.stores.collaborators.list(repo.repo_id)
