"""A garbage collection's hold on one repository: while it lasts, no push starts writing there.

Garbage collection deletes history no ref reaches; a push may have found some of it held (a
parent, a delta base, an object) and be about to point a ref at it. The two meet as in Dekker's
algorithm, each writing before it reads the other: a push claims its record and then reads the
hold (``PushStore.claim``), the collector takes the hold and then reads the push records. Either
the collector sees the claim and leaves the repository for its next pass, or the push sees the
hold and gives its claim back until the hold ends, before reading anything it could rely on.

The hold is one item with an expiry, so a collector that dies holding it blocks pushes no
longer than that, and a collector stops deleting before its hold runs out.
"""

from __future__ import annotations

import math
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass

from muse_cloud.storage import keys
from muse_cloud.storage.backend import NEW_ITEM, Below, ConditionFailed, Equals, Table, any_of


@dataclass(frozen=True)
class Hold:
    repo_id: str
    token: str
    until: int  # seconds since the epoch

    def left(self) -> float:
        return self.until - time.time()


@dataclass
class GcHolds:
    table: Table

    def take(self, repo_id: str, seconds: int) -> Hold | None:
        """Hold the repository for ``seconds``, or None while another collector holds it."""
        now = time.time()
        hold = Hold(repo_id, uuid.uuid4().hex, math.ceil(now + seconds))
        item = {**keys.gc_hold(repo_id), "until": hold.until, "token": hold.token}
        try:
            self.table.put(item, any_of(NEW_ITEM, Below("until", math.floor(now))))
        except ConditionFailed:
            return None
        return hold

    def give_back(self, hold: Hold) -> None:
        with suppress(ConditionFailed):
            self.table.delete(keys.gc_hold(hold.repo_id), Equals("token", hold.token))

    def held_until(self, repo_id: str) -> int | None:
        """When the current hold on the repository ends; None when there is none."""
        item = self.table.get(keys.gc_hold(repo_id))
        until = int(item["until"]) if item else 0
        return until if until > time.time() else None
