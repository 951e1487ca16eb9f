"""Personal access tokens as stored: never the secret, only its SHA-256."""

from __future__ import annotations

from dataclasses import dataclass

from muse_cloud.domain.roles import Role


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    identity_id: str
    name: str
    scope: Role
    secret_sha256: str
    created_at: str
    expires_at: int | None = None
    revoked_at: str | None = None
