"""Push events: the outbox delivered to the bus, and a repository's recent events.

Delivery: each ref change wrote its events to the outbox in its own transaction, so every change
has its events once, however often its push was redelivered or retried. The publisher takes an
item's lease, publishes, and moves the events to the repository's log in one transaction; only a
publisher dying between the bus's answer and that transaction sends events twice, with the same
``event_id``s, so a consumer can drop the second copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import Caller
from muse_cloud.services.access import RepoAccessService
from muse_cloud.storage.events import LoggedEvent, timestamp
from muse_cloud.storage.stores import Stores

# Long enough for one PutEvents call and its retries; a dead publisher's items wait this long.
LEASE_SECONDS = 60
DEFAULT_WINDOW = timedelta(days=1)
MAX_EVENTS = 1000


@dataclass(frozen=True)
class RecentEvents:
    events: list[LoggedEvent]
    # Older events after ``since`` were left out to keep the answer at the limit.
    truncated: bool


@dataclass
class EventService:
    stores: Stores
    access: RepoAccessService
    lease_seconds: int = LEASE_SECONDS

    def publish_pending(self) -> int:
        """Publish every outbox item no other publisher holds; the events published. An item
        the bus does not take goes back to the outbox for the next sweep at once, and the
        first such failure is raised once the other items are through."""
        published = 0
        failure: Exception | None = None
        events = self.stores.events
        for outbox in events.pending():
            token = events.claim(outbox, self.lease_seconds)
            if token is None:
                continue
            try:
                self.stores.bus.publish(outbox.events)
            except Exception as error:
                events.release(outbox, token)
                failure = failure or error
                continue
            if events.published(outbox, token):
                published += len(outbox.events)
        if failure is not None:
            raise failure
        return published

    def recent(
        self, caller: Caller, owner: str, name: str, since: str | None, limit: int
    ) -> RecentEvents:
        """The repository's published events after ``since`` (ISO 8601; default: a day ago),
        oldest first; the newest ``limit`` when there are more."""
        repo = self.access.by_slug(caller, owner, name, "read")
        if not 1 <= limit <= MAX_EVENTS:
            raise ServiceError(
                "invalid_limit", f"limit must be between 1 and {MAX_EVENTS}", str(limit)
            )
        found = self.stores.events.logged_since(repo.repo_id, _since(since), last=limit + 1)
        return RecentEvents(found[-limit:], len(found) > limit)


def _since(text: str | None) -> str:
    if text is None:
        return timestamp(datetime.now(UTC) - DEFAULT_WINDOW)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ServiceError(
            "invalid_since", "since must be an ISO 8601 time, such as 2026-01-31T12:00:00Z", text
        ) from None
    return timestamp(at if at.tzinfo else at.replace(tzinfo=UTC))
