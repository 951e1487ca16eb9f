"""The outbox of push events and each repository's log of the ones published.

A ref change writes one outbox item, holding an event per ref it changed, in the transaction that
changes the refs (``outbox``): the events exist exactly when the change does, and a rerun that
finds the refs moved writes none. The publisher takes an item's lease, publishes its events, and
then, in one transaction, deletes the item and writes the events into the repository's log; a
publisher that dies in between leaves the item to the next one, which publishes the same events
(same ``event_id``s) again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from muse_cloud.domain.events import PushEvent
from muse_cloud.storage import keys
from muse_cloud.storage.backend import (
    NEW_ITEM,
    Absent,
    Action,
    Below,
    ConditionFailed,
    Delete,
    Equals,
    Exists,
    Item,
    Key,
    Put,
    Table,
    Update,
    all_of,
    any_of,
)

LOG_RETENTION_SECONDS = 30 * 24 * 3600


def timestamp(at: datetime | None = None) -> str:
    """UTC to the microsecond, always in one width, so that timestamps sort as text."""
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Outbox:
    key: Key
    events: tuple[PushEvent, ...]


@dataclass(frozen=True)
class LoggedEvent:
    published_at: str
    event: PushEvent


@dataclass
class EventStore:
    table: Table

    def outbox(self, change_id: str, created_at: str, events: Sequence[PushEvent]) -> Put:
        """The action that adds a ref change's events to the outbox, in the change's own
        transaction."""
        item = {
            **keys.outbox(created_at, change_id),
            "events": [e.detail() for e in events],
        }
        return Put(item, NEW_ITEM)

    def pending(self) -> list[Outbox]:
        """Every outbox item, oldest first."""
        return [_outbox(i) for i in self.table.query(keys.OUTBOX, keys.OUTBOX_SK)]

    def claim(self, outbox: Outbox, lease_seconds: int) -> str | None:
        """The lease on the item (its token), or None when another publisher holds it or it
        was published already."""
        now = int(time.time())
        token = uuid.uuid4().hex
        free = all_of(Exists("pk"), any_of(Absent("lease_until"), Below("lease_until", now)))
        update = Update(set={"lease_until": now + lease_seconds, "lease_token": token})
        try:
            self.table.change(outbox.key, update, free)
        except ConditionFailed:
            return None
        return token

    def release(self, outbox: Outbox, token: str) -> None:
        """Give the lease back at once (publishing failed), so the next sweep retries."""
        update = Update(remove=("lease_until", "lease_token"))
        try:
            self.table.change(outbox.key, update, Equals("lease_token", token))
        except ConditionFailed:
            return

    def published(self, outbox: Outbox, token: str) -> bool:
        """Move the events from the outbox to their repositories' logs, only while the lease
        is still this publisher's; False when it was lost (another published them too)."""
        published_at = timestamp()
        expires = int(time.time()) + LOG_RETENTION_SECONDS
        actions: list[Action] = [Delete(outbox.key, Equals("lease_token", token))]
        for event in outbox.events:
            key = keys.push_event(event.repo_id, published_at, event.event_id)
            item = {**key, "detail": event.detail(), "published_at": published_at, "ttl": expires}
            actions.append(Put(item))
        try:
            self.table.transact(actions)
        except ConditionFailed:
            return False
        return True

    def logged_since(self, repo_id: str, since: str, last: int | None = None) -> list[LoggedEvent]:
        """The repository's published events after ``since`` (a ``timestamp``), oldest first,
        only the ``last`` when given; expired ones (DynamoDB deletes them some time after their
        TTL) are left out."""
        now = int(time.time())
        # '$' sorts right after the '#' that follows the time: past the events of ``since``.
        after = f"{keys.EVENT_SK}{since}$"
        items = self.table.query(keys.repo_partition(repo_id), keys.EVENT_SK, after, last)
        return [_logged(i) for i in items if int(i["ttl"]) > now]


def _outbox(item: Item) -> Outbox:
    key = {"pk": item["pk"], "sk": item["sk"]}
    return Outbox(key, tuple(PushEvent.of_detail(d) for d in item["events"]))


def _logged(item: dict[str, Any]) -> LoggedEvent:
    return LoggedEvent(item["published_at"], PushEvent.of_detail(item["detail"]))
