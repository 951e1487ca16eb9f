"""A repository: who owns it, who may see it, and what its clients check out by default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Visibility = Literal["public", "private"]


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
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True)
class DeletedRepo:
    """A deleted repository whose items garbage collection has yet to remove: its META and
    SLUG went at once, the rest (commits, snapshots, pushes, the partition) goes later."""

    repo_id: str
    full_name: str
    deleted_at: float  # seconds since the epoch
