"""Values too large for an item (400 KB) go to S3, and the item keeps their key instead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from muse_cloud.domain.errors import ServiceError
from muse_cloud.storage.backend import Bucket

# DynamoDB items hold 400 KB; what is left is for the item's other attributes.
INLINE_VALUE_BYTES = 300_000


@dataclass
class LargeValues:
    bucket: Bucket

    def store(self, item: dict[str, Any], name: str, body: bytes, s3_key: str) -> None:
        """Put ``body`` in the item as ``name``, or in S3 under ``s3_key`` (the item then holds
        ``name_key``) when it would not fit."""
        if len(body) <= INLINE_VALUE_BYTES:
            item[name] = body
            return
        item[f"{name}_key"] = s3_key
        self.bucket.put(s3_key, body)

    def load(self, item: dict[str, Any], name: str) -> bytes:
        if name in item:
            return bytes(item[name])
        key = str(item[f"{name}_key"])
        body = self.bucket.get(key)
        if body is None:
            raise ServiceError("missing_value", f"the stored {name} is gone from S3", key)
        return body
