"""Packs built for a fetch, found again by what was asked. History is immutable, so the same
heads and haves of one repository always make the same pack: a clone of heads that did not move
since the last one costs two S3 requests instead of a rebuild from every item of the history."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from muse_cloud.storage import layout
from muse_cloud.storage.backend import Bucket
from muse_core.mpack import MPACK_VERSION, mpack_key


@dataclass(frozen=True)
class BuiltPack:
    s3_key: str
    mpack_key: str
    size_bytes: int
    commits: int
    snapshots: int
    objects: int


def request_id(heads: Mapping[str, str], have: Iterable[str]) -> str:
    """The name of one fetch: the heads packed (as the pack names them) and what the caller has."""
    asked = {"mpack_version": MPACK_VERSION, "heads": dict(heads), "have": sorted(set(have))}
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()


@dataclass
class FetchPackStore:
    bucket: Bucket

    def find(self, repo_id: str, request: str) -> BuiltPack | None:
        raw = self.bucket.get(layout.fetch_request(repo_id, request))
        if raw is None:
            return None
        built = BuiltPack(**json.loads(raw))
        # fetch/ expires by a lifecycle rule, a pack maybe before the note that names it.
        return built if self.bucket.exists(built.s3_key) else None

    def keep(
        self, repo_id: str, request: str, data: bytes, commits: int, snapshots: int, objects: int
    ) -> BuiltPack:
        key = mpack_key(data)
        s3_key = layout.fetch_pack(repo_id, key.removeprefix("sha256:"))
        self.bucket.put(s3_key, data)
        built = BuiltPack(s3_key, key, len(data), commits, snapshots, objects)
        note = json.dumps(asdict(built)).encode()
        self.bucket.put(layout.fetch_request(repo_id, request), note, "application/json")
        return built
