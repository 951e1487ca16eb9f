"""Settings from the environment that template.yaml (or the local stack) provides.

A variable the template sets and the code needs is required: a function deployed without it
fails at its cold start, naming the variable, instead of writing to a default table.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from muse_core.limits import DEFAULT_LIMITS, Limits

MIB = 1024**2
TIB = 1024**4


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MUSE_", frozen=True, extra="ignore")

    table_name: str
    bucket_name: str
    # Where push events go (every function writes them to the outbox; one publishes them).
    event_bus_name: str
    presign_expiry_seconds: int = 300
    download_expiry_seconds: int = 300
    inline_object_bytes: int = 1024 * 1024
    # S3's largest object.
    max_upload_bytes: int = 5 * TIB
    # Packs above the threshold go up in parts (S3 multipart) for clients that can send them;
    # parts are never under S3's 5 MiB, and grow as 10,000 parts of a large pack need.
    multipart_threshold_bytes: int = 64 * MIB
    multipart_part_bytes: int = 16 * MIB
    # Quotas: bytes stored (counted per ingested pack) and pushes a minute (counted at presign).
    repo_max_bytes: int = 5 * TIB
    owner_max_bytes: int = 20 * TIB
    repo_pushes_per_minute: int = 300
    owner_pushes_per_minute: int = 1200
    # Only the API function has one: the first admin, registered on first use.
    bootstrap_admin_public_key: str = ""
    # Garbage collection deletes nothing younger than this, nor what pushes of it touched.
    gc_grace_seconds: int = 86_400
    # A fetch pack still building after this long in an API call (29 s) is built by the unpack
    # function instead, and the caller polls for it.
    fetch_build_seconds: float = 10.0
    # What one pack may hold, as JSON (``MUSE_PACK_LIMITS='{"max_commits": 1000}'``; fields left
    # out keep their default). A test stack makes a small history too large for one pack.
    pack_limits: Limits = DEFAULT_LIMITS
