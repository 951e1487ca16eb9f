"""Uploaded packs (the home of their objects once ingested) and the URLs that move bytes
straight between clients and S3."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import IO

from muse_cloud.domain.errors import ServiceError
from muse_cloud.storage import layout
from muse_cloud.storage.backend import Bucket, UploadTerms
from muse_cloud.storage.layout import STATE_TAG, UploadKey
from muse_cloud.storage.pack_index import ObjectLocation

MPACK_TYPE = "application/x-msgpack"


@dataclass
class PackStore:
    bucket: Bucket
    upload_expiry_seconds: int = 300
    download_expiry_seconds: int = 300

    def presign_upload(self, key: UploadKey, size: int) -> tuple[str, dict[str, str]]:
        """A PUT URL bound to one key, one length and one checksum; and the headers to send."""
        terms = UploadTerms(
            size=size,
            content_type=MPACK_TYPE,
            checksum_sha256=base64.b64encode(bytes.fromhex(key.mpack_hex)).decode(),
            tags={STATE_TAG: "incoming"},
        )
        url = self.bucket.upload_url(key.s3_key, self.upload_expiry_seconds, terms)
        return url, terms.headers

    def presign_download(self, s3_key: str) -> str:
        return self.bucket.download_url(s3_key, self.download_expiry_seconds)

    def presign_object(self, repo_id: str, location: ObjectLocation) -> str:
        """A short-lived URL for one large object, copied out of its pack on first request
        (server-side, so the bytes never pass through the function)."""
        key = layout.copied_object(repo_id, location.object_id)
        if not self.bucket.exists(key):
            self.bucket.copy_range(location.s3_key, location.offset, location.length, key)
        return self.presign_download(key)

    def open(self, s3_key: str) -> IO[bytes] | None:
        """A stream of the object's bytes, or None when there is no such object."""
        return self.bucket.open(s3_key)

    def read_range(self, s3_key: str, offset: int, length: int) -> bytes:
        return self.bucket.read_range(s3_key, offset, length)

    def put(self, s3_key: str, data: bytes, content_type: str | None = None) -> None:
        self.bucket.put(s3_key, data, content_type)

    def put_upload(self, key: UploadKey, data: bytes) -> None:
        """A pack the server built itself, where an uploaded pack would be and tagged as one,
        so that ingestion treats it exactly like a pack a client uploaded."""
        self.bucket.put(key.s3_key, data, MPACK_TYPE, {STATE_TAG: "incoming"})

    def mark_ingested(self, s3_key: str) -> None:
        """Retag so the lifecycle rule that expires abandoned uploads leaves this pack alone
        (a pack gone with its deleted repository has nothing left to keep)."""
        self.bucket.tag(s3_key, {STATE_TAG: "ingested"})

    def delete_repository(self, repo_id: str) -> None:
        """Delete every byte of a repository. One prefix failing must not keep the others'
        bytes: all are tried, then the first refusal is raised."""
        kept = [
            k for prefix in layout.repo_prefixes(repo_id) for k in self.bucket.delete_prefix(prefix)
        ]
        if kept:
            key, reason = kept[0]
            raise ServiceError(
                "delete_failed", f"storage kept {len(kept)} object(s): {reason}".strip(), key
            )
