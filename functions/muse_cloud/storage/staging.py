"""Wire v0's objects uploaded ahead of a push.

The Muse client uploads a push's objects (inline or by presigned PUT) before it sends the push
itself. They wait under ``staging/<repo_id>/<object_id>`` until the push turns them into a pack:
nothing a reader sees points at them, the push verifies every byte, and a lifecycle rule expires
the leftovers of pushes that never came.
"""

from __future__ import annotations

from dataclasses import dataclass

from muse_cloud.storage import layout
from muse_cloud.storage.backend import Bucket
from muse_cloud.storage.requests import map_in_context

# The client's PUTs run 8 at once, 300 s each: a long list of large objects needs longer than
# one PUT's time before the last one starts.
STAGING_PUT_EXPIRY_SECONDS = 3600
_PARALLEL = 8


@dataclass
class StagingStore:
    bucket: Bucket

    def presign_put(self, repo_id: str, object_id: str) -> str:
        """A PUT URL with nothing but the key signed: the client sends urllib's default
        Content-Type and no checksum header, so neither may be part of the signature."""
        key = layout.staged_object(repo_id, object_id)
        return self.bucket.upload_url(key, STAGING_PUT_EXPIRY_SECONDS)

    def put_many(self, repo_id: str, objects: dict[str, bytes]) -> None:
        def put(item: tuple[str, bytes]) -> None:
            self.bucket.put(layout.staged_object(repo_id, item[0]), item[1])

        map_in_context(put, objects.items(), _PARALLEL)

    def get_many(self, repo_id: str, object_ids: list[str]) -> dict[str, bytes]:
        """The staged bytes of each id found (as uploaded: the caller hashes them)."""

        def get(object_id: str) -> tuple[str, bytes | None]:
            return object_id, self.bucket.get(layout.staged_object(repo_id, object_id))

        found = map_in_context(get, object_ids, _PARALLEL)
        return {oid: data for oid, data in found if data is not None}
