"""Repositories: a META item keyed by repo_id and a SLUG item that makes owner/name unique."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from muse_cloud import aws
from muse_cloud.auth.identities import validate_handle
from muse_cloud.errors import ServiceError
from muse_cloud.storage import dynamo, keys

Visibility = Literal["public", "private"]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class Repo:
    repo_id: str
    owner: str
    name: str
    visibility: Visibility
    created_at: str
    default_branch: str = "main"
    domain: str = "code"

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.name}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "repoId": self.repo_id,
            # As on MuseHub: the seed client builds /{owner}/{slug}/... paths from it.
            "slug": self.name,
            "fullName": self.slug,
            "owner": self.owner,
            "name": self.name,
            "visibility": self.visibility,
            "defaultBranch": self.default_branch,
            "domain": self.domain,
            "createdAt": self.created_at,
        }


def validate_repo_name(owner: str, name: str) -> None:
    validate_handle(owner)
    if not _NAME.fullmatch(name) or name.endswith((".", ".git")) or ".." in name:
        raise ServiceError(
            400, "invalid_repo_name", "name must be 1-100 of A-Z a-z 0-9 . _ - (no '..')", name
        )


class RepoStore:
    def create(self, owner: str, name: str, visibility: Visibility, domain: str = "code") -> Repo:
        validate_repo_name(owner, name)
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
            aws.dynamodb().transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": dynamo.table(),
                            "Item": dynamo.to_wire(slug),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Put": {"TableName": dynamo.table(), "Item": dynamo.to_wire(meta)}},
                ]
            )
        except ClientError as error:
            if dynamo.is_conditional_failure(error):
                raise ServiceError(
                    409, "repo_exists", "a repository with that owner and name exists", repo.slug
                ) from None
            raise
        return repo

    def get(self, repo_id: str) -> Repo | None:
        item = dynamo.get_item(keys.repo_meta(repo_id))
        return _from_item(item) if item else None

    def by_slug(self, owner: str, name: str) -> Repo | None:
        item = dynamo.get_item(keys.repo_slug(owner, name))
        return self.get(item["repo_id"]) if item else None

    def adopt_default_branch(self, repo: Repo, branch: str) -> None:
        """Make ``branch`` the default, unless the default changed since ``repo`` was read."""
        try:
            aws.dynamodb().update_item(
                TableName=dynamo.table(),
                Key=dynamo.to_wire(keys.repo_meta(repo.repo_id)),
                UpdateExpression="SET default_branch = :new",
                ConditionExpression="attribute_exists(pk) AND default_branch = :old",
                ExpressionAttributeValues={
                    ":new": {"S": branch},
                    ":old": {"S": repo.default_branch},
                },
            )
        except ClientError as error:
            if not dynamo.is_conditional_failure(error):
                raise

    def delete(self, repo: Repo) -> None:
        """Remove the two items every lookup goes through, together, so readers lose it at once."""
        aws.dynamodb().transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": dynamo.table(), "Key": dynamo.to_wire(key)}}
                for key in (keys.repo_meta(repo.repo_id), keys.repo_slug(repo.owner, repo.name))
            ]
        )


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
