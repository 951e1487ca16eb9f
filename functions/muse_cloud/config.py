"""Settings read from the environment that template.yaml (or the local stack) provides."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

UPLOAD_PREFIX = "incoming/"
PACK_PREFIX = "repos/"


@dataclass(frozen=True)
class Settings:
    table_name: str
    bucket_name: str
    idempotency_table_name: str
    presign_expiry_seconds: int = 300
    download_expiry_seconds: int = 300
    inline_object_bytes: int = 1024 * 1024
    max_upload_bytes: int = 4 * 1024 * 1024 * 1024


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings(
        table_name=os.environ.get("MUSE_TABLE_NAME", "muse-cloud"),
        bucket_name=os.environ.get("MUSE_BUCKET_NAME", "muse-cloud-packs"),
        idempotency_table_name=os.environ.get(
            "MUSE_IDEMPOTENCY_TABLE_NAME", "muse-cloud-idempotency"
        ),
        presign_expiry_seconds=int(os.environ.get("MUSE_PRESIGN_EXPIRY_SECONDS", "300")),
    )
