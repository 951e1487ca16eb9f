"""Repositories, their collaborators, and identities: the administrative operations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from muse_cloud.auth.identities import Caller, Identity, IdentityStore, validate_handle
from muse_cloud.auth.msign import b64url_decode
from muse_cloud.auth.permissions import Role, require_create
from muse_cloud.errors import ServiceError, not_found
from muse_cloud.services.access import RepoAccessService
from muse_cloud.storage.collaborators import CollaboratorStore
from muse_cloud.storage.commits import StoredCommit
from muse_cloud.storage.packs import PackStore
from muse_cloud.storage.receiver import RepoStores
from muse_cloud.storage.refs import RefStore, RefUpdate
from muse_cloud.storage.repos import Repo, RepoStore, Visibility
from muse_core.commits import CommitRecord
from muse_core.snapshot import compute_snapshot_id
from muse_core.verify import VerifiedSnapshot

# Every S3 prefix holding a repository's bytes, each followed by ``<repo_id>/``. ApiFunction's
# policy in template.yaml must allow s3:DeleteObject on each of them.
DELETED_PREFIXES = ("incoming/", "repos/", "fetch/", "staging/")


@dataclass
class RepoService:
    repos: RepoStore = field(default_factory=RepoStore)
    access: RepoAccessService = field(default_factory=RepoAccessService)
    collaborators: CollaboratorStore = field(default_factory=CollaboratorStore)
    packs: PackStore = field(default_factory=PackStore)
    stores: RepoStores = field(default_factory=RepoStores)
    refs: RefStore = field(default_factory=RefStore)

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
        repo = self.repos.create(owner, name, visibility, domain)
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
        self.refs.compare_and_swap(repo.repo_id, [update], push_id="initialize")

    def get(self, caller: Caller, repo_id: str) -> Repo:
        return self.access.by_id(caller, repo_id, "read")

    def by_slug(self, caller: Caller, owner: str, name: str) -> Repo:
        return self.access.by_slug(caller, owner, name, "read")

    def delete(self, caller: Caller, repo_id: str) -> None:
        repo = self.access.by_id(caller, repo_id, "admin")
        self.repos.delete(repo)
        # Unreachable from here on (every key carries the repo_id); free the bytes as well. One
        # prefix failing must not keep the others' bytes: try them all, then report.
        failures: list[ServiceError] = []
        for prefix in DELETED_PREFIXES:
            try:
                self.packs.delete_prefix(f"{prefix}{repo.repo_id}/")
            except ServiceError as error:
                failures.append(error)
        if failures:
            raise failures[0]

    def set_collaborator(self, caller: Caller, repo_id: str, handle: str, role: Role) -> None:
        repo = self.access.by_id(caller, repo_id, "admin")
        validate_handle(handle)
        if handle == repo.owner:
            raise ServiceError(
                400, "owner_is_not_collaborator", "the owner has every right", handle
            )
        self.collaborators.set_role(repo.repo_id, handle, role)

    def remove_collaborator(self, caller: Caller, repo_id: str, handle: str) -> None:
        repo = self.access.by_id(caller, repo_id, "admin")
        # Checked before it goes into a key, as set_collaborator does.
        validate_handle(handle)
        if not self.collaborators.remove(repo.repo_id, handle):
            raise not_found("collaborator", handle)

    def list_collaborators(self, caller: Caller, repo_id: str) -> dict[str, Role]:
        repo = self.access.by_id(caller, repo_id, "admin")
        return self.collaborators.list(repo.repo_id)


@dataclass
class IdentityService:
    identities: IdentityStore = field(default_factory=IdentityStore)

    def register(
        self, caller: Caller, handle: str, public_key: str, is_admin: bool, is_agent: bool
    ) -> Identity:
        if not caller.is_admin:
            status = 401 if caller.is_anonymous else 403
            code = "auth_required" if caller.is_anonymous else "forbidden"
            raise ServiceError(status, code, "only an admin may register identities", handle)
        try:
            raw = b64url_decode(public_key)
        except ValueError:
            raise ServiceError(
                400, "invalid_public_key", "public_key must be base64url", public_key
            ) from None
        identity = Identity.from_public_key(handle, raw, is_admin=is_admin, is_agent=is_agent)
        self.identities.register(identity)
        return identity

    def describe(self, caller: Caller) -> dict[str, Any]:
        return {
            "handle": caller.handle,
            "identity_id": caller.identity_id,
            "is_admin": caller.is_admin,
            "is_agent": caller.is_agent,
            "anonymous": caller.is_anonymous,
        }
