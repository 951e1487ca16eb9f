"""S3 side of wire v0: objects uploaded ahead of a push, and the pack a push becomes.

The Muse client uploads a push's objects (inline or by presigned PUT) before it sends the push
itself. They wait under ``staging/<repo_id>/<object_id>`` until the push turns them into a pack:
nothing a reader sees points at them, the push verifies every byte, and a lifecycle rule expires
the leftovers of pushes that never came.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from muse_cloud import aws
from muse_cloud.config import settings
from muse_cloud.storage.packs import STATE_TAG, UploadKey

STAGING_PREFIX = "staging/"
# The client's PUTs run 8 at once, 300 s each: a long list of large objects needs longer than
# one PUT's time before the last one starts.
STAGING_PUT_EXPIRY_SECONDS = 3600
_PARALLEL = 8


def staging_key(repo_id: str, object_id: str) -> str:
    return f"{STAGING_PREFIX}{repo_id}/{object_id}"


class StagingStore:
    @property
    def bucket(self) -> str:
        return settings().bucket_name

    def presign_put(self, repo_id: str, object_id: str) -> str:
        """A PUT URL with nothing but the key signed: the client sends urllib's default
        Content-Type and no checksum header, so neither may be part of the signature."""
        url: str = aws.s3().generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": staging_key(repo_id, object_id)},
            ExpiresIn=STAGING_PUT_EXPIRY_SECONDS,
        )
        return url

    def put_many(self, repo_id: str, objects: dict[str, bytes]) -> None:
        def put(item: tuple[str, bytes]) -> None:
            aws.s3().put_object(Bucket=self.bucket, Key=staging_key(repo_id, item[0]), Body=item[1])

        with ThreadPoolExecutor(max_workers=_PARALLEL) as pool:
            list(pool.map(put, objects.items()))

    def get_many(self, repo_id: str, object_ids: list[str]) -> dict[str, bytes]:
        """The staged bytes of each id found (as uploaded: the caller hashes them)."""

        def get(object_id: str) -> tuple[str, bytes | None]:
            try:
                body: Any = aws.s3().get_object(
                    Bucket=self.bucket, Key=staging_key(repo_id, object_id)
                )["Body"]
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return object_id, None
                raise
            return object_id, body.read()

        with ThreadPoolExecutor(max_workers=_PARALLEL) as pool:
            found = dict(pool.map(get, object_ids))
        return {oid: data for oid, data in found.items() if data is not None}

    def put_upload(self, key: UploadKey, data: bytes) -> None:
        """The pack a push was turned into, where an uploaded pack would be and tagged as one,
        so that ingestion treats it exactly like a pack a client uploaded."""
        aws.s3().put_object(
            Bucket=self.bucket,
            Key=key.s3_key,
            Body=data,
            ContentType="application/x-msgpack",
            Tagging=f"{STATE_TAG}=incoming",
        )
