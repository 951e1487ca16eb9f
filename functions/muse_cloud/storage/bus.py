"""Where push events go: an EventBridge bus on AWS, a list in memory.

PutEvents takes at most 10 entries a call and can refuse some of them while taking the others;
only the refused ones are sent again, so one call never publishes an event twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from muse_cloud.domain.events import DETAIL_TYPE, EVENT_SOURCE, PushEvent
from muse_cloud.storage.dynamo import chunks

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

PUT_EVENTS_MAX = 10
_ATTEMPTS = 4


class BusRefused(Exception):
    """The bus did not take every event (after retrying the refused ones)."""


class EventBus(Protocol):
    def publish(self, events: Sequence[PushEvent]) -> None:
        """Every event published, or ``BusRefused`` (some may have been)."""
        ...


class EventBridgeBus:
    def __init__(self, client: EventBridgeClient, name: str) -> None:
        self.client = client
        self.name = name

    def publish(self, events: Sequence[PushEvent]) -> None:
        for batch in chunks(list(events), PUT_EVENTS_MAX):
            self._publish_batch([self._entry(e) for e in batch])

    def _publish_batch(self, entries: list[PutEventsRequestEntryTypeDef]) -> None:
        delay = 0.1
        for _ in range(_ATTEMPTS):
            answer = self.client.put_events(Entries=entries)
            if not answer.get("FailedEntryCount"):
                return
            # Entries answer in request order; one with an ErrorCode was not taken.
            results = answer["Entries"]
            entries = [e for e, r in zip(entries, results, strict=True) if r.get("ErrorCode")]
            time.sleep(delay)
            delay *= 2
        reasons = sorted({str(r.get("ErrorCode")) for r in results if r.get("ErrorCode")})
        raise BusRefused(f"{len(entries)} events refused by {self.name}: {', '.join(reasons)}")

    def _entry(self, event: PushEvent) -> PutEventsRequestEntryTypeDef:
        return {
            "Source": EVENT_SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(event.detail(), sort_keys=True),
            "EventBusName": self.name,
            "Time": datetime.fromisoformat(event.at),
        }


@dataclass
class MemoryBus:
    published: list[PushEvent] = field(default_factory=list)

    def publish(self, events: Sequence[PushEvent]) -> None:
        self.published.extend(events)
