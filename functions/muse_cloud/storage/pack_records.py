"""Which commits and snapshots an ingested pack brought: read from the pack itself.

Ingestion writes an item for every commit of a pack, and for every snapshot the repository did
not hold, but keeps no list of them (a push writes nothing it does not need). Garbage collection
needs that list to find the items of history no ref reaches any more, so it reads the pack's
records again. A pack lists its commits and snapshots before its objects (``build_pack``'s
order), so the read stops where the objects begin and fetches little more than the records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

import msgpack

from muse_cloud.domain.errors import ServiceError

_RECORDS = {"commits": "commit_id", "snapshots": "snapshot_id"}


@dataclass(frozen=True)
class PackRecords:
    commits: frozenset[str]
    snapshots: frozenset[str]


def read_pack_records(stream: IO[bytes], s3_key: str) -> PackRecords:
    """The ids of the commits and snapshots of a pack ingestion verified before."""
    found: dict[str, set[str]] = {}
    unpacker = msgpack.Unpacker(stream, raw=False, read_size=1 << 16)
    try:
        for _ in range(unpacker.read_map_header()):
            name = unpacker.unpack()
            if name in _RECORDS:
                ids = found.setdefault(name, set())
                for _ in range(unpacker.read_array_header()):
                    ids.add(str(unpacker.unpack()[_RECORDS[name]]))
            elif found.keys() == _RECORDS.keys():
                break
            else:
                unpacker.skip()
    except (ValueError, TypeError, KeyError, msgpack.UnpackException) as error:
        raise ServiceError(
            "unreadable_pack", f"the pack's records do not read: {error}", s3_key
        ) from None
    return PackRecords(frozenset(found.get("commits", ())), frozenset(found.get("snapshots", ())))
