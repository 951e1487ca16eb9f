"""Per-repository object index: where in which uploaded pack each object's bytes sit.

The uploaded pack stays the objects' home, so a push costs no S3 request per object and reading
one object costs one ranged GET. The locations are the pack indexes (``pack_index``), not an
item per object, so what a push writes grows with its packs, not its objects. A repository only
ever sees objects indexed under its own id.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from muse_cloud.storage.pack_index import PackIndex


@dataclass(frozen=True)
class ObjectLocation:
    object_id: str
    s3_key: str
    offset: int
    length: int


class ObjectIndex:
    def __init__(self, packs: PackIndex | None = None) -> None:
        if packs is None:
            # pack_index builds on ObjectLocation, so it is imported once this module is loaded.
            from muse_cloud.storage.pack_index import PackIndex

            packs = PackIndex()
        self.packs = packs

    def put_many(self, repo_id: str, locations: Sequence[ObjectLocation]) -> tuple[int, int]:
        """Index objects of packs whose PACK item is written; returns the (DynamoDB, S3)
        requests made."""
        return self.packs.index(repo_id, locations)

    def locate(self, repo_id: str, object_id: str) -> ObjectLocation | None:
        return self.packs.locate_all(repo_id, [object_id]).get(object_id)

    def locate_many(self, repo_id: str, object_ids: Collection[str]) -> dict[str, ObjectLocation]:
        return self.packs.locate_all(repo_id, object_ids)

    def known(self, repo_id: str, object_ids: Collection[str]) -> set[str]:
        return set(self.packs.locate_all(repo_id, object_ids))
