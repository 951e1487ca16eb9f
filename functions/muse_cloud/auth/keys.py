"""Which Ed25519 public keys an identity may have: 32 raw bytes, canonically encoded, of large
order (a small-order key verifies signatures nobody made)."""

from __future__ import annotations

from muse_cloud.auth.edwards import point_problem
from muse_cloud.auth.msign import PUBLIC_KEY_BYTES, b64url_decode
from muse_cloud.domain.errors import ServiceError


def validate_public_key(public_key: bytes) -> bytes:
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ServiceError("invalid_public_key", "public key must be 32 raw bytes")
    problem = point_problem(public_key)
    if problem is not None:
        # Named in hex: a non-canonical key has no base64url spelling of its own to echo.
        raise ServiceError("weak_public_key", f"public key is {problem}", public_key.hex())
    return public_key


def decode_public_key(text: str) -> bytes:
    """A base64url public key, checked."""
    try:
        raw = b64url_decode(text.strip())
    except ValueError:
        raise ServiceError("invalid_public_key", "public_key must be base64url", text) from None
    return validate_public_key(raw)
