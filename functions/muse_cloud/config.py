"""Settings from the environment that template.yaml (or the local stack) provides.

A variable the template sets and the code needs is required: a function deployed without it
fails at its cold start, naming the variable, instead of writing to a default table.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

GIB = 1024**3


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MUSE_", frozen=True, extra="ignore")

    table_name: str
    bucket_name: str
    # Where push events go (every function writes them to the outbox; one publishes them).
    event_bus_name: str
    presign_expiry_seconds: int = 300
    download_expiry_seconds: int = 300
    inline_object_bytes: int = 1024 * 1024
    max_upload_bytes: int = 4 * GIB
    # Only the API function has one: the first admin, registered on first use.
    bootstrap_admin_public_key: str = ""
    # Garbage collection deletes nothing younger than this, nor what pushes of it touched.
    gc_grace_seconds: int = 86_400
