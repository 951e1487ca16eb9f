"""A push as the server records it: the state machine both ingestion triggers share, and its
outcome (an ``IngestResult`` or a refusal)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

PushState = Literal["pending", "processing", "ok", "failed"]
FINAL_STATES: tuple[PushState, ...] = ("ok", "failed")


@dataclass(frozen=True)
class PushRequest:
    """What a push asks for: one branch moved to one head (or, without a branch, every head
    the pack names), fast-forward unless forced."""

    branch: str | None = None
    head: str | None = None
    force: bool = False


@dataclass(frozen=True)
class Pusher:
    """Who a push is for, as judged when it was asked for: protected branches that only the
    owner and admins may change need ``admin``."""

    handle: str | None
    admin: bool = False


@dataclass(frozen=True)
class RefMove:
    branch: str
    head: str
    previous_head: str | None


@dataclass(frozen=True)
class Timings:
    verify_ms: int = 0
    write_ms: int = 0
    plan_ms: int = 0
    refs_ms: int = 0
    total_ms: int = 0


@dataclass(frozen=True)
class IngestResult:
    """What an ingestion did. Counts come from the pack, so a rerun after a crash (which finds
    some items already written) reports what an uninterrupted run would."""

    commits_written: int
    snapshots_written: int
    objects_written: int
    bytes: int
    updates: tuple[RefMove, ...]
    dynamodb_requests: int = 0
    s3_requests: int = 0
    timings: Timings = field(default_factory=Timings)

    @property
    def first(self) -> RefMove | None:
        return self.updates[0] if self.updates else None

    def applied(self) -> dict[str, str]:
        return {u.branch: u.head for u in self.updates}


@dataclass(frozen=True)
class Refusal:
    """Why a push failed: a stable code, a message and the offending item."""

    code: str
    message: str
    item: str | None = None


@dataclass
class PushRecord:
    repo_id: str
    push_id: str
    mpack_key: str
    state: PushState
    branch: str | None = None
    head: str | None = None
    force: bool = False
    size_bytes: int | None = None
    created_at: str = ""
    updated_at: str = ""
    result: IngestResult | None = None
    error: Refusal | None = None
    plan: dict[str, str | None] | None = None
    attempts: int = 0
    lease_token: str | None = None
    lease_until: int | None = None
    # None for a push recorded before pushers were: judged as a writer's.
    pusher: Pusher | None = None

    def targets_other(self, branch: str | None, head: str | None) -> bool:
        """Whether (branch, head) asks for a ref move this ingested push did not make."""
        if branch is None:
            return False
        applied = self.result.applied() if self.result else {}
        return branch not in applied or head not in (None, applied[branch])

    def in_effect(self, branch: str | None, head: str | None, heads: Mapping[str, str]) -> bool:
        """Whether this ingested push made the move (branch, head) asks for (every move it made,
        when no branch is given) and ``heads``, the refs now, still show it."""
        applied = self.result.applied() if self.result else {}
        if branch is not None and self.targets_other(branch, head):
            return False
        wanted = applied if branch is None else {branch: applied[branch]}
        return all(heads.get(b) == h for b, h in wanted.items())
