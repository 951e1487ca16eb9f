"""Per-pack object indexes (like git's .idx files): every object an ingested pack holds, with its
offset, in one S3 object next to the repository's data, plus one PACK item per pack.

Reading a few objects goes through the per-object index; reading most of a repository (a clone)
reads the handful of pack indexes instead of one index item per object.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from muse_cloud.config import PACK_PREFIX
from muse_cloud.storage import dynamo, keys
from muse_cloud.storage.objects import ObjectIndex, ObjectLocation
from muse_cloud.storage.packs import PackStore

_ENTRY = struct.Struct(">32sQQ")
# Reading every pack index pays off once a request wants this many objects per pack.
OBJECTS_PER_PACK_INDEX = 200


def pack_index_key(repo_id: str, mpack_hex: str) -> str:
    return f"{PACK_PREFIX}{repo_id}/packs/{mpack_hex}.idx"


def encode_index(locations: Sequence[ObjectLocation]) -> bytes:
    return b"".join(
        _ENTRY.pack(bytes.fromhex(loc.object_id), loc.offset, loc.length) for loc in locations
    )


def decode_index(data: bytes, s3_key: str, wanted: Collection[str]) -> dict[str, ObjectLocation]:
    found: dict[str, ObjectLocation] = {}
    for raw_id, offset, length in _ENTRY.iter_unpack(data):
        object_id = raw_id.hex()
        if object_id in wanted:
            found[object_id] = ObjectLocation(object_id, s3_key, offset, length)
    return found


@dataclass
class PackIndex:
    objects: ObjectIndex = field(default_factory=ObjectIndex)
    packs: PackStore = field(default_factory=PackStore)

    def record(
        self, repo_id: str, s3_key: str, mpack_hex: str, locations: Sequence[ObjectLocation]
    ) -> int:
        """Write the pack's index (when it carries objects) and its PACK item, which also marks
        that ingestion began writing this pack; returns the S3 requests made."""
        item: dynamo.Item = {
            **keys.pack(repo_id, mpack_hex),
            "s3_key": s3_key,
            "objects": len(locations),
        }
        if locations:
            item["index_key"] = pack_index_key(repo_id, mpack_hex)
            self.packs.put(item["index_key"], encode_index(locations))
        dynamo.put_item(item)
        return 1 if locations else 0

    def holds(self, repo_id: str, mpack_hex: str) -> bool:
        """Whether objects of this pack were indexed (so the pack must never expire)."""
        return dynamo.get_item(keys.pack(repo_id, mpack_hex)) is not None

    def locate_all(self, repo_id: str, object_ids: Collection[str]) -> dict[str, ObjectLocation]:
        """Where each object is, read the cheaper way for the number asked."""
        wanted = set(object_ids)
        packs = dynamo.query_prefix(keys.repo_partition(repo_id), keys.PACK_PREFIX)
        if not packs or len(wanted) < OBJECTS_PER_PACK_INDEX * len(packs):
            return self.objects.locate_many(repo_id, wanted)
        found: dict[str, ObjectLocation] = {}
        for pack in (p for p in packs if "index_key" in p):
            found.update(decode_index(self.packs.get(pack["index_key"]), pack["s3_key"], wanted))
        rest = wanted - found.keys()
        if rest:
            found.update(self.objects.locate_many(repo_id, rest))
        return found
