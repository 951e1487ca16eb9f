"""Every ref change goes through here: a push's moves, a deletion, a repository's first commit.

A change is judged against the repository's protected-branch rules and its default branch as
read now (``Guard``), then made in one transaction with two checks that both are still what it
was judged under, and with the outbox item of its events. So no change lands under rules
replaced after it was judged (no window between check and move), and a change and its events
exist together or not at all. When only the guard changed, the change is judged again and
retried; when a ref moved, the caller hears so and decides (a conflict, or a rerun's success).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from muse_cloud.domain.errors import ServiceError, not_found
from muse_cloud.domain.events import PushCounts, PushEvent
from muse_cloud.domain.protection import Protection, RefChangeKind, judge
from muse_cloud.domain.pushes import Pusher
from muse_cloud.domain.repos import Repo
from muse_cloud.storage.backend import TRANSACTION_MAX, Action
from muse_cloud.storage.events import timestamp
from muse_cloud.storage.refs import RefUpdate, directories
from muse_cloud.storage.stores import Stores

# Beside its refs, every ref change's transaction holds: the rules unchanged, the default branch
# unchanged, the outbox item.
GUARD_ACTIONS = 3
REF_ACTIONS_MAX = TRANSACTION_MAX - GUARD_ACTIONS
# Each retry follows a change of the rules or of the default branch, made by an admin.
JUDGE_ATTEMPTS = 5


@dataclass(frozen=True)
class Guard:
    """What a change is judged under: the repository (its default branch) and its rules."""

    repo: Repo
    protection: Protection

    def same_as(self, other: Guard) -> bool:
        return (self.repo.default_branch, self.protection.version) == (
            other.repo.default_branch,
            other.protection.version,
        )


@dataclass
class RefChanges:
    stores: Stores

    def guard(self, repo_id: str) -> Guard:
        guarded = self.stores.repos.get_guarded(repo_id)
        if guarded is None:
            raise ServiceError("repo_not_found", "repository does not exist", repo_id)
        return Guard(*guarded)

    def judge_moves(self, guard: Guard, updates: Sequence[RefUpdate], by: Pusher | None) -> None:
        for update in updates:
            kind: RefChangeKind = "force_push" if update.forced else "push"
            self._judge(guard, update.branch, kind, by)

    def move(
        self,
        repo_id: str,
        updates: list[RefUpdate],
        push_id: str,
        by: Pusher | None,
        counts: PushCounts,
        judged: Guard | None = None,
    ) -> bool:
        """Move the refs as ``compare_and_swap`` does, if the rules allow it; False when a ref
        was not where ``updates`` expect it (another push moved it first).

        ``judged`` is a guard the caller read during this change: the transaction checks it is
        still current, so it is used once instead of read again.
        """
        for _ in range(JUDGE_ATTEMPTS):
            guard = judged or self.guard(repo_id)
            judged = None
            self.judge_moves(guard, updates, by)
            change_id, at = uuid.uuid4().hex, timestamp()
            events = [
                PushEvent(
                    # Zero-padded: a change's events sort, in the log, as its refs did.
                    event_id=f"{change_id}-{n:02d}",
                    repo=guard.repo.full_name,
                    repo_id=repo_id,
                    ref=u.branch,
                    before=u.expected,
                    after=u.new,
                    forced=u.forced,
                    pusher=by.handle if by else None,
                    push_id=push_id,
                    at=at,
                    counts=counts,
                )
                for n, u in enumerate(updates)
            ]
            also = self._guarded(guard, change_id, at, events)
            if self.stores.refs.compare_and_swap(repo_id, updates, push_id, also):
                return True
            if self.guard(repo_id).same_as(guard):
                return False
        raise self._unsettled(updates[0].branch)

    def delete(self, repo_id: str, branch: str, expected: str, by: Pusher) -> PushEvent:
        """Delete the branch if it is at ``expected`` and the rules allow it; its event."""
        for _ in range(JUDGE_ATTEMPTS):
            guard = self.guard(repo_id)
            if branch == guard.repo.default_branch:
                raise ServiceError(
                    "default_branch",
                    f"{branch!r} is the default branch of {guard.repo.full_name}: make another "
                    "branch the default first",
                    branch,
                )
            self._judge(guard, branch, "delete", by)
            change_id, at = uuid.uuid4().hex, timestamp()
            event = PushEvent(
                event_id=f"{change_id}-00",
                repo=guard.repo.full_name,
                repo_id=repo_id,
                ref=branch,
                before=expected,
                after=None,
                forced=False,
                pusher=by.handle,
                push_id=change_id,
                at=at,
                counts=PushCounts(),
            )
            also = self._guarded(guard, change_id, at, [event])
            if self.stores.refs.delete(repo_id, branch, expected, also):
                return event
            current = self.stores.refs.get(repo_id, branch)
            if current is None:
                raise not_found("branch", branch)
            if current != expected:
                raise ServiceError(
                    "ref_conflict",
                    f"branch {branch!r} is at {current}, not at {expected}; fetch and look again",
                    branch,
                )
        raise self._unsettled(branch)

    @staticmethod
    def deletion_fits(branch: str) -> None:
        """A deletion takes one action per directory of the name too; a branch created before
        every change carried its guard can be deeper than one transaction allows."""
        size = 1 + len(directories(branch))
        if size > REF_ACTIONS_MAX:
            raise ServiceError(
                "limit_exceeded",
                f"deleting this branch takes {size} conditional writes, more than the "
                f"{REF_ACTIONS_MAX} of one ref change",
                branch,
            )

    def _judge(self, guard: Guard, branch: str, kind: RefChangeKind, by: Pusher | None) -> None:
        judge(
            guard.protection, guard.repo.default_branch, branch, kind, by is not None and by.admin
        )

    def _guarded(
        self, guard: Guard, change_id: str, at: str, events: Sequence[PushEvent]
    ) -> list[Action]:
        repo_id = guard.repo.repo_id
        return [
            self.stores.protection.unchanged(repo_id, guard.protection),
            self.stores.repos.default_branch_is(repo_id, guard.repo.default_branch),
            self.stores.events.outbox(change_id, at, events),
        ]

    @staticmethod
    def _unsettled(branch: str) -> ServiceError:
        return ServiceError(
            "ref_conflict",
            f"the protected-branch rules or the default branch kept changing while {branch!r} "
            "was being changed; try again",
            branch,
        )
