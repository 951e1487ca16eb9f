"""Branches as a repository's people manage them: deleting one, choosing the default, and the
protected-branch rules."""

from __future__ import annotations

from dataclasses import dataclass

from muse_cloud.domain.errors import ServiceError, not_found
from muse_cloud.domain.events import PushEvent
from muse_cloud.domain.identities import Caller
from muse_cloud.domain.protection import BranchRule, Protection, validate_rules
from muse_cloud.domain.repos import Repo
from muse_cloud.services.access import RepoAccessService
from muse_cloud.services.ref_changes import RefChanges
from muse_cloud.storage.stores import Stores
from muse_core.errors import MuseError
from muse_core.ids import require_id
from muse_core.paths import validate_branch_name


def _branch(name: str) -> str:
    try:
        return validate_branch_name(name)
    except MuseError as error:
        raise ServiceError.from_core(error) from None


@dataclass
class BranchService:
    stores: Stores
    access: RepoAccessService

    def delete(
        self, caller: Caller, owner: str, name: str, branch: str, expected_head: str
    ) -> PushEvent:
        """Delete ``branch`` if it is still at ``expected_head`` (compare-and-swap)."""
        repo = self.access.by_slug(caller, owner, name, "write")
        _branch(branch)
        try:
            require_id(expected_head, "expected_head")
        except MuseError as error:
            raise ServiceError.from_core(error) from None
        changes = RefChanges(self.stores)
        changes.deletion_fits(branch)
        return changes.delete(repo.repo_id, branch, expected_head, self.access.pusher(caller, repo))

    def set_default(self, caller: Caller, repo_id: str, branch: str) -> Repo:
        """Make an existing branch the default (what clones check out; the ``:default`` rule
        of protected branches covers it from then on)."""
        repo = self.access.by_id(caller, repo_id, "admin")
        _branch(branch)
        moved = self.stores.repos.set_default_branch(
            repo.repo_id, branch, self.stores.refs.is_branch(repo.repo_id, branch)
        )
        changed = self.stores.repos.get(repo.repo_id)
        if changed is None:
            raise not_found("repository", repo_id)
        if not moved:
            raise not_found("branch", branch)
        return changed

    def protection(self, caller: Caller, repo_id: str) -> Protection:
        repo = self.access.by_id(caller, repo_id, "admin")
        return self.stores.protection.get(repo.repo_id)

    def protect(
        self, caller: Caller, repo_id: str, rules: list[BranchRule], version: int | None
    ) -> Protection:
        """Replace the rules; with ``version``, only if it is still the current one."""
        repo = self.access.by_id(caller, repo_id, "admin")
        checked = validate_rules(rules)
        current = self.stores.protection.get(repo.repo_id)
        if version is not None and version != current.version:
            raise _conflict(version, current.version)
        replaced = self.stores.protection.replace(repo.repo_id, checked, current)
        if replaced is None:
            raise _conflict(current.version, current.version + 1)
        return replaced


def _conflict(read: int, now: int) -> ServiceError:
    return ServiceError(
        "protection_conflict",
        f"the rules were changed since version {read} was read (now at {now} or later); "
        "read them again",
        str(read),
    )
