"""Packs built for a fetch, found again by what was asked. History is immutable, so the same
heads and haves of one repository always make the same pack: a clone of heads that did not move
since the last one costs two S3 requests instead of a rebuild from every item of the history."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

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
    # The branches the pack names (notes kept before they were recorded name none).
    branch_heads: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildAsked:
    """What one fetch packs: the branches at the heads it packs, commits wanted outside any
    branch (named ``want/<id>`` in the pack), and what the caller has."""

    branch_heads: dict[str, str]
    untracked: list[str]
    have: list[str]
    # When it was handed to the unpack function (epoch seconds); not part of the request.
    asked_at: float = 0.0

    def packed_heads(self) -> dict[str, str]:
        return {**self.branch_heads, **{f"want/{c}": c for c in self.untracked}}

    def request_id(self) -> str:
        """The name of one fetch: the heads packed (as the pack names them) and what the
        caller has."""
        asked = {
            "mpack_version": MPACK_VERSION,
            "heads": self.packed_heads(),
            "have": sorted(set(self.have)),
        }
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
        self,
        repo_id: str,
        request: str,
        data: bytes,
        counts: tuple[int, int, int],
        branch_heads: Mapping[str, str],
    ) -> BuiltPack:
        """Store a built pack and the note that finds it again; ``counts`` are its commits,
        snapshots and objects."""
        key = mpack_key(data)
        s3_key = layout.fetch_pack(repo_id, key.removeprefix("sha256:"))
        self.bucket.put(s3_key, data)
        built = BuiltPack(s3_key, key, len(data), *counts, branch_heads=dict(branch_heads))
        note = json.dumps(asdict(built)).encode()
        self.bucket.put(layout.fetch_request(repo_id, request), note, "application/json")
        return built

    def ask_build(self, repo_id: str, request: str, asked: BuildAsked) -> None:
        """Hand the build to the unpack function: the bucket notifies it of this object."""
        key = layout.FetchBuildKey(repo_id, request)
        self.bucket.put(key.s3_key, json.dumps(asdict(asked)).encode(), "application/json")

    def build_asked(self, key: layout.FetchBuildKey) -> BuildAsked | None:
        raw = self.bucket.get(key.s3_key)
        return None if raw is None else BuildAsked(**json.loads(raw))

    def fail_build(self, key: layout.FetchBuildKey, error: Mapping[str, Any]) -> None:
        self.bucket.put(key.failure_key, json.dumps(dict(error)).encode(), "application/json")

    def build_failure(self, key: layout.FetchBuildKey) -> dict[str, Any] | None:
        raw = self.bucket.get(key.failure_key)
        return None if raw is None else dict(json.loads(raw))
