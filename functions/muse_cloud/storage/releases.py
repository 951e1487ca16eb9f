"""Tags and releases of a repository, in its own partition (gone with it). Each keeps the
record the client sent, as JSON, every field included."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from muse_cloud.storage import keys
from muse_cloud.storage.backend import NEW_ITEM, ConditionFailed, Table


@dataclass
class ReleaseStore:
    table: Table

    def _put_new(self, item: dict[str, Any]) -> bool:
        """Write the item unless one is there already; whether this call wrote it."""
        try:
            self.table.put(item, NEW_ITEM)
        except ConditionFailed:
            return False
        return True

    def add_tag(self, repo_id: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """None when stored now; the record held under that tag id when there is one."""
        key = keys.tag(repo_id, record["tag_id"])
        if self._put_new({**key, "record": json.dumps(record)}):
            return None
        held = self.table.get(key)
        return json.loads(held["record"]) if held else None

    def remove_tags(self, repo_id: str, tag_ids: Sequence[str]) -> None:
        self.table.delete_many([keys.tag(repo_id, t) for t in tag_ids])

    def tags(self, repo_id: str) -> list[dict[str, Any]]:
        items = self.table.query(keys.repo_partition(repo_id), keys.TAG_SK)
        return [json.loads(i["record"]) for i in items]

    def add_release(self, repo_id: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """None when stored now; the release held under that tag when there is one."""
        item = {**keys.release(repo_id, record["tag"]), "record": json.dumps(record)}
        if self._put_new(item):
            return None
        return self.release(repo_id, record["tag"])

    def release(self, repo_id: str, tag: str) -> dict[str, Any] | None:
        held = self.table.get(keys.release(repo_id, tag))
        return json.loads(held["record"]) if held else None

    def releases(self, repo_id: str) -> list[dict[str, Any]]:
        items = self.table.query(keys.repo_partition(repo_id), keys.RELEASE_SK)
        return [json.loads(i["record"]) for i in items]

    def retract(self, repo_id: str, tag: str) -> bool:
        """Remove the release of ``tag``; whether there was one."""
        return self.table.delete(keys.release(repo_id, tag)) is not None
