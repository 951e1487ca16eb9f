"""Per-repository object index: where in which uploaded pack each object's bytes sit.

The uploaded pack stays the objects' home, so a push costs no S3 request per object and reading
one object costs one ranged GET. A repository only ever sees objects indexed under its own id.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from muse_cloud.storage import dynamo, keys


@dataclass(frozen=True)
class ObjectLocation:
    object_id: str
    s3_key: str
    offset: int
    length: int


class ObjectIndex:
    def put_many(self, repo_id: str, locations: Iterable[ObjectLocation]) -> int:
        items = [
            {
                **keys.object_index(repo_id, loc.object_id),
                "s3_key": loc.s3_key,
                "offset": loc.offset,
                "length": loc.length,
            }
            for loc in locations
        ]
        return dynamo.batch_write(items)

    def locate(self, repo_id: str, object_id: str) -> ObjectLocation | None:
        item = dynamo.get_item(keys.object_index(repo_id, object_id))
        if item is None:
            return None
        return ObjectLocation(object_id, item["s3_key"], int(item["offset"]), int(item["length"]))

    def locate_many(self, repo_id: str, object_ids: Collection[str]) -> dict[str, ObjectLocation]:
        items = dynamo.batch_get(keys.object_index(repo_id, o) for o in object_ids)
        found = {}
        for item in items:
            oid = item["pk"].rsplit("#", 1)[1]
            found[oid] = ObjectLocation(
                oid, item["s3_key"], int(item["offset"]), int(item["length"])
            )
        return found

    def known(self, repo_id: str, object_ids: Collection[str]) -> set[str]:
        items = dynamo.batch_get((keys.object_index(repo_id, o) for o in object_ids), "pk")
        return {i["pk"].rsplit("#", 1)[1] for i in items}
