"""Repositories: a META item keyed by repo_id and a SLUG item that makes owner/name unique."""

from __future__ import annotations

import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.protection import Protection
from muse_cloud.domain.repos import DeletedRepo, Repo, Visibility
from muse_cloud.storage import keys
from muse_cloud.storage.backend import (
    NEW_ITEM,
    Action,
    Change,
    Check,
    ConditionFailed,
    Delete,
    Equals,
    Exists,
    Put,
    Table,
    Update,
    all_of,
)
from muse_cloud.storage.protection import protection_of


@dataclass
class RepoStore:
    table: Table

    def create(self, owner: str, name: str, visibility: Visibility, domain: str = "code") -> Repo:
        repo = Repo(
            repo_id=str(uuid.uuid4()),
            owner=owner,
            name=name,
            visibility=visibility,
            created_at=datetime.now(UTC).isoformat(),
            domain=domain,
        )
        meta = {**keys.repo_meta(repo.repo_id), **_to_item(repo)}
        slug = {**keys.repo_slug(owner, name), "repo_id": repo.repo_id}
        try:
            self.table.transact([Put(slug, NEW_ITEM), Put(meta)])
        except ConditionFailed:
            raise ServiceError(
                "repo_exists", "a repository with that owner and name exists", repo.full_name
            ) from None
        return repo

    def get(self, repo_id: str) -> Repo | None:
        item = self.table.get(keys.repo_meta(repo_id))
        return _from_item(item) if item else None

    def get_guarded(self, repo_id: str) -> tuple[Repo, Protection] | None:
        """The repository and its protected-branch rules, in one read: every ref change is
        judged under both."""
        meta, rules = keys.repo_meta(repo_id), keys.protection(repo_id)
        items = {i["sk"]: i for i in self.table.get_many([meta, rules])}
        if meta["sk"] not in items:
            return None
        return _from_item(items[meta["sk"]]), protection_of(items.get(rules["sk"]))

    def by_slug(self, owner: str, name: str) -> Repo | None:
        item = self.table.get(keys.repo_slug(owner, name))
        return self.get(item["repo_id"]) if item else None

    def adopt_default_branch(self, repo: Repo, branch: str) -> None:
        """Make ``branch`` the default, unless the default changed since ``repo`` was read."""
        with suppress(ConditionFailed):
            self.table.change(
                keys.repo_meta(repo.repo_id),
                Update(set={"default_branch": branch}),
                all_of(Exists("pk"), Equals("default_branch", repo.default_branch)),
            )

    def default_branch_is(self, repo_id: str, branch: str) -> Check:
        """The transaction action that holds only while ``branch`` is the default."""
        return Check(keys.repo_meta(repo_id), Equals("default_branch", branch))

    def set_default_branch(self, repo_id: str, branch: str, also: Action) -> bool:
        """Make ``branch`` the default, with ``also`` (that it is a branch); False when the
        repository is gone or ``also`` does not hold."""
        change = Change(
            keys.repo_meta(repo_id), Update(set={"default_branch": branch}), Exists("pk")
        )
        try:
            self.table.transact([change, also])
        except ConditionFailed:
            return False
        return True

    def delete(self, repo: Repo) -> None:
        """Remove the two items every lookup goes through, together, so readers lose it at once,
        and leave the tombstone garbage collection removes the rest by."""
        tombstone = _tombstone(repo.repo_id, repo.full_name, time.time())
        self.table.transact(
            [
                Delete(keys.repo_meta(repo.repo_id)),
                Delete(keys.repo_slug(repo.owner, repo.name)),
                Put(tombstone),
            ]
        )

    def bury(self, repo_id: str) -> None:
        """A tombstone for a repository found without its META item (deleted before
        tombstones were written), unless it has one."""
        with suppress(ConditionFailed):
            self.table.put(_tombstone(repo_id, "", time.time()), NEW_ITEM)

    def deleted(self) -> list[DeletedRepo]:
        """Every deleted repository garbage collection has not finished with, oldest first."""
        items = self.table.query(keys.DELETED_REPOS, "")
        found = [DeletedRepo(i["sk"], i["full_name"], float(i["deleted_at"])) for i in items]
        return sorted(found, key=lambda d: d.deleted_at)

    def forget(self, repo_id: str) -> None:
        """Garbage collection is done with this deleted repository."""
        self.table.delete(keys.deleted_repo(repo_id))


def _tombstone(repo_id: str, full_name: str, deleted_at: float) -> dict[str, Any]:
    return {**keys.deleted_repo(repo_id), "full_name": full_name, "deleted_at": int(deleted_at)}


def _to_item(repo: Repo) -> dict[str, Any]:
    return {
        "repo_id": repo.repo_id,
        "owner": repo.owner,
        "name": repo.name,
        "visibility": repo.visibility,
        "created_at": repo.created_at,
        "default_branch": repo.default_branch,
        "domain": repo.domain,
    }


def _from_item(item: dict[str, Any]) -> Repo:
    return Repo(
        repo_id=item["repo_id"],
        owner=item["owner"],
        name=item["name"],
        visibility=item["visibility"],
        created_at=item["created_at"],
        default_branch=item.get("default_branch", "main"),
        domain=item.get("domain", "code"),
    )
