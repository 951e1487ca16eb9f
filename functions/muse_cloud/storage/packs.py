"""S3: uploaded packs (the home of their objects), offloaded checkpoints and fetch packs.

Keys use only ``[a-z0-9/._-]`` so S3 event keys never need more than ``unquote_plus``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from muse_cloud import aws
from muse_cloud.config import PACK_PREFIX, UPLOAD_PREFIX, settings
from muse_cloud.errors import ServiceError
from muse_cloud.storage.objects import ObjectLocation

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import ErrorTypeDef

STATE_TAG = "muse-state"


@dataclass(frozen=True)
class UploadKey:
    repo_id: str
    mpack_hex: str

    @property
    def s3_key(self) -> str:
        return f"{UPLOAD_PREFIX}{self.repo_id}/{self.mpack_hex}.mpack"

    @property
    def mpack_key(self) -> str:
        return f"sha256:{self.mpack_hex}"

    @classmethod
    def parse(cls, s3_key: str) -> UploadKey | None:
        if not s3_key.startswith(UPLOAD_PREFIX) or not s3_key.endswith(".mpack"):
            return None
        parts = s3_key[len(UPLOAD_PREFIX) : -len(".mpack")].split("/")
        if len(parts) != 2:
            return None
        return cls(repo_id=parts[0], mpack_hex=parts[1])


def large_value_key(repo_id: str, kind: str, item_id: str) -> str:
    return f"{PACK_PREFIX}{repo_id}/{kind}/{item_id}.msgpack"


# DynamoDB items hold 400 KB: a larger value goes to S3 and the item keeps its key.
INLINE_VALUE_BYTES = 300_000


def fetch_key(repo_id: str, mpack_hex: str) -> str:
    return f"fetch/{repo_id}/{mpack_hex}.mpack"


class PackStore:
    @property
    def bucket(self) -> str:
        return settings().bucket_name

    def presign_upload(self, key: UploadKey, size: int) -> tuple[str, dict[str, str]]:
        """A PUT URL bound to one key, one length and one checksum; and the headers to send."""
        checksum = base64.b64encode(bytes.fromhex(key.mpack_hex)).decode()
        headers = {
            "Content-Length": str(size),
            "Content-Type": "application/x-msgpack",
            "x-amz-checksum-sha256": checksum,
            "x-amz-tagging": f"{STATE_TAG}=incoming",
        }
        url = aws.s3().generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": key.s3_key,
                "ContentLength": size,
                "ContentType": "application/x-msgpack",
                "ChecksumSHA256": checksum,
                "Tagging": f"{STATE_TAG}=incoming",
            },
            ExpiresIn=settings().presign_expiry_seconds,
        )
        return url, headers

    def presign_download(self, s3_key: str) -> str:
        return aws.s3().generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": s3_key},
            ExpiresIn=settings().download_expiry_seconds,
        )

    def presign_range(self, location: ObjectLocation) -> str:
        """A short-lived URL for one large object, copied out of its pack on first request
        (server-side, so the bytes never pass through the function)."""
        client = aws.s3()
        key = f"{PACK_PREFIX}{location.s3_key.split('/')[1]}/objects/{location.object_id}"
        try:
            client.head_object(Bucket=self.bucket, Key=key)
        except ClientError:
            upload = client.create_multipart_upload(Bucket=self.bucket, Key=key)
            last = location.offset + location.length - 1
            part = client.upload_part_copy(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload["UploadId"],
                PartNumber=1,
                CopySource={"Bucket": self.bucket, "Key": location.s3_key},
                CopySourceRange=f"bytes={location.offset}-{last}",
            )
            client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload["UploadId"],
                MultipartUpload={
                    "Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]
                },
            )
        return self.presign_download(key)

    def open(self, s3_key: str) -> IO[bytes] | None:
        """A stream of the object's bytes, or None when there is no such object."""
        try:
            body: Any = aws.s3().get_object(Bucket=self.bucket, Key=s3_key)["Body"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return body  # type: ignore[no-any-return]

    def read_range(self, s3_key: str, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        answer = aws.s3().get_object(
            Bucket=self.bucket, Key=s3_key, Range=f"bytes={offset}-{offset + length - 1}"
        )
        return answer["Body"].read()

    def put(self, s3_key: str, data: bytes) -> None:
        aws.s3().put_object(Bucket=self.bucket, Key=s3_key, Body=data)

    def store_value(self, item: dict[str, Any], name: str, body: bytes, s3_key: str) -> int:
        """Put ``body`` in the item as ``name``, or in S3 under ``s3_key`` (as ``name_key``) when
        it would not fit; returns the S3 requests made."""
        if len(body) <= INLINE_VALUE_BYTES:
            item[name] = body
            return 0
        item[f"{name}_key"] = s3_key
        self.put(s3_key, body)
        return 1

    def load_value(self, item: dict[str, Any], name: str) -> bytes:
        if name in item:
            return bytes(item[name])
        return self.get(item[f"{name}_key"])

    def get(self, s3_key: str) -> bytes:
        return aws.s3().get_object(Bucket=self.bucket, Key=s3_key)["Body"].read()

    def mark_ingested(self, s3_key: str) -> None:
        """Retag so the lifecycle rule that expires abandoned uploads leaves this pack alone."""
        try:
            aws.s3().put_object_tagging(
                Bucket=self.bucket,
                Key=s3_key,
                Tagging={"TagSet": [{"Key": STATE_TAG, "Value": "ingested"}]},
            )
        except ClientError as error:
            # Gone with its deleted repository: nothing is left to keep.
            if error.response.get("Error", {}).get("Code") != "NoSuchKey":
                raise

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under ``prefix``.

        DeleteObjects answers 200 even when some keys were not deleted (access denied, a
        throttled partition): those are retried once, then raised, never silently left behind.
        """
        client = aws.s3()

        def delete(keys: list[str]) -> list[ErrorTypeDef]:
            # A listing page holds at most 1,000 keys, DeleteObjects' limit.
            answer = client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
            )
            return list(answer.get("Errors", []))

        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [o["Key"] for o in page.get("Contents", [])]
            failed = delete(keys) if keys else []
            if failed:
                failed = delete([error.get("Key", "") for error in failed])
            if failed:
                first = failed[0]
                raise ServiceError(
                    500,
                    "delete_failed",
                    f"storage kept {len(failed)} object(s) under {prefix}: "
                    f"{first.get('Code', '')} {first.get('Message', '')}".strip(),
                    first.get("Key"),
                )
