"""Log cursors: the frontier of a log walk, kept server-side for the next page.

A frontier can outgrow any URL on a wide history, so the cursor a client holds is only its
name; the item expires after a day (TTL), and a frontier too large for it lives in S3.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from muse_cloud.storage import keys, layout
from muse_cloud.storage.backend import Item, Table
from muse_cloud.storage.dynamo import pack_ids, unpack_ids
from muse_cloud.storage.values import LargeValues

CURSOR_TTL_SECONDS = 24 * 3600


@dataclass
class CursorStore:
    table: Table
    values: LargeValues

    def save(self, repo_id: str, frontier: list[str]) -> str:
        token = uuid.uuid4().hex
        item: Item = {
            **keys.log_cursor(token),
            "repo_id": repo_id,
            "ttl": int(time.time()) + CURSOR_TTL_SECONDS,
        }
        key = layout.large_value(repo_id, "cursors", token)
        self.values.store(item, "frontier", pack_ids(frontier) or b"", key)
        self.table.put(item)
        return token

    def load(self, repo_id: str, token: str) -> list[str] | None:
        """The frontier, or None when no live cursor of this repository has that name."""
        item = self.table.get(keys.log_cursor(token))
        if item is None or item["repo_id"] != repo_id or int(item["ttl"]) < time.time():
            return None
        return list(unpack_ids(self.values.load(item, "frontier")))
