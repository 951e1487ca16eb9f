"""The ``Bucket`` of S3, through the low-level client.

Keys use only ``[a-z0-9/._-]`` (see ``layout``) so S3 event keys never need more than
``unquote_plus``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from muse_cloud.storage.backend import StoredFile, UploadTerms

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ErrorTypeDef

_MISSING = ("NoSuchKey", "404", "NotFound")
_DELETE_MAX = 1000


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _MISSING


class S3Bucket:
    def __init__(self, client: S3Client, name: str) -> None:
        self.client = client
        self.name = name

    def get(self, key: str) -> bytes | None:
        stream = self.open(key)
        if stream is None:
            return None
        with stream:
            return stream.read()

    def open(self, key: str) -> IO[bytes] | None:
        try:
            body: Any = self.client.get_object(Bucket=self.name, Key=key)["Body"]
        except ClientError as error:
            if _missing(error):
                return None
            raise
        return body  # type: ignore[no-any-return]

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        answer = self.client.get_object(
            Bucket=self.name, Key=key, Range=f"bytes={offset}-{offset + length - 1}"
        )
        return answer["Body"].read()

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        extra: dict[str, str] = {}
        if content_type:
            extra["ContentType"] = content_type
        if tags:
            extra["Tagging"] = "&".join(f"{k}={v}" for k, v in tags.items())
        self.client.put_object(Bucket=self.name, Key=key, Body=data, **extra)  # type: ignore[arg-type]

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.name, Key=key)
        except ClientError as error:
            if _missing(error):
                return False
            raise
        return True

    def tag(self, key: str, tags: Mapping[str, str]) -> bool:
        try:
            self.client.put_object_tagging(
                Bucket=self.name,
                Key=key,
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]},
            )
        except ClientError as error:
            if _missing(error):
                return False
            raise
        return True

    def copy_range(self, source: str, offset: int, length: int, target: str) -> None:
        # UploadPartCopy is the one S3 call that copies a byte range server-side.
        upload = self.client.create_multipart_upload(Bucket=self.name, Key=target)
        part = self.client.upload_part_copy(
            Bucket=self.name,
            Key=target,
            UploadId=upload["UploadId"],
            PartNumber=1,
            CopySource={"Bucket": self.name, "Key": source},
            CopySourceRange=f"bytes={offset}-{offset + length - 1}",
        )
        self.client.complete_multipart_upload(
            Bucket=self.name,
            Key=target,
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]},
        )

    def delete_prefix(self, prefix: str) -> list[tuple[str, str]]:
        return self.delete_keys(f.key for f in self.files(prefix))

    def files(self, prefix: str) -> Iterator[StoredFile]:
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=prefix
        ):
            for listed in page.get("Contents", []):
                yield StoredFile(listed["Key"], listed["Size"], listed["LastModified"].timestamp())

    def delete_keys(self, keys: Iterable[str]) -> list[tuple[str, str]]:
        """DeleteObjects answers 200 even when some keys were not deleted (access denied, a
        throttled partition): those are retried once, then reported, never silently kept."""

        def delete(batch: Sequence[str]) -> list[ErrorTypeDef]:
            answer = self.client.delete_objects(
                Bucket=self.name,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            return list(answer.get("Errors", []))

        kept: list[tuple[str, str]] = []
        # DeleteObjects takes at most 1,000 keys; a listing page holds as many, so a prefix is
        # deleted page by page as it is listed.
        remaining = iter(keys)
        while batch := list(islice(remaining, _DELETE_MAX)):
            failed = delete(batch)
            if failed:
                failed = delete([error.get("Key", "") for error in failed])
            kept += [
                (e.get("Key", ""), f"{e.get('Code', '')} {e.get('Message', '')}".strip())
                for e in failed
            ]
        return kept

    def upload_url(self, key: str, expires_in: int, terms: UploadTerms | None = None) -> str:
        params: dict[str, Any] = {"Bucket": self.name, "Key": key}
        if terms is not None:
            params.update(
                ContentLength=terms.size,
                ContentType=terms.content_type,
                ChecksumSHA256=terms.checksum_sha256,
                Tagging=terms.tagging,
            )
        return self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in)

    def download_url(self, key: str, expires_in: int) -> str:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.name, "Key": key}, ExpiresIn=expires_in
        )
