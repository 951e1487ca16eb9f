"""Uploaded packs (the home of their objects once ingested) and the URLs that move bytes
straight between clients and S3."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import IO

from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.uploads import PartLayout, UploadedPart
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

    def start_parts(self, key: UploadKey) -> str:
        """The upload in parts of this pack: the oldest one still open, so that a push resumed
        after an interruption finds the parts it sent, or a new one. Completed, it carries
        the tag and type a single PUT would."""
        open_uploads = self.bucket.multipart_uploads(key.s3_key)
        if open_uploads:
            return open_uploads[0]
        return self.bucket.create_multipart(key.s3_key, MPACK_TYPE, {STATE_TAG: "incoming"})

    def uploaded_parts(self, key: UploadKey, upload_id: str) -> list[UploadedPart] | None:
        """The parts in place, or None when ``upload_id`` is no open upload of this pack (S3
        ties an upload id to its key; moto does not, so it is looked up by key first)."""
        if upload_id not in self.bucket.multipart_uploads(key.s3_key):
            return None
        return self.bucket.list_parts(key.s3_key, upload_id)

    def part_urls(
        self, key: UploadKey, upload_id: str, layout: PartLayout, numbers: list[int]
    ) -> dict[int, str]:
        """A PUT URL for each part number, bound to that part's length."""
        return {
            n: self.bucket.part_url(
                key.s3_key, upload_id, n, layout.length(n), self.upload_expiry_seconds
            )
            for n in numbers
        }

    def complete_parts(self, key: UploadKey, upload_id: str, parts: list[UploadedPart]) -> None:
        self.bucket.complete_multipart(key.s3_key, upload_id, parts)

    def uploaded(self, key: UploadKey) -> bool:
        return self.bucket.exists(key.s3_key)

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
