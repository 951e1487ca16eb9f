"""Bearer personal access tokens: the token format, and a request's token to a ScopedCaller.

A token is ``mct_<token_id>_<secret>``: the id finds its record in one read, the secret is
checked against the stored SHA-256 of the whole token. Every refusal is a 401 with its own code.

Plain HTTP: API Gateway terminates TLS and tells the function the scheme in
``X-Forwarded-Proto`` (always ``https`` on an HTTP API); its last value is the one the nearest
proxy set. A request that did not come over https may carry a token only when the client
addressed a loopback host (its ``Host`` header), as the Muse client itself allows; the local
stack listens on 127.0.0.1 only and sets no ``X-Forwarded-Proto``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from muse_cloud.auth.lookups import Identities, Tokens
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import ScopedCaller
from muse_cloud.domain.tokens import TokenRecord

SCHEME = "bearer"
PREFIX = "mct_"
_TOKEN = re.compile(r"mct_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class NewToken:
    token_id: str
    secret: str

    @classmethod
    def generate(cls) -> NewToken:
        token_id = secrets.token_hex(8)
        return cls(token_id, f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}")


def secret_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_bearer(authorization: str) -> bool:
    return authorization.strip().partition(" ")[0].lower() == SCHEME


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, its name matched case-insensitively."""
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _host_name(host: str) -> str:
    """``Host`` without its port: ``[::1]:8787`` -> ``::1``, ``localhost:8787`` -> ``localhost``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def secure_transport(headers: Mapping[str, str]) -> bool:
    proto = (header(headers, "x-forwarded-proto") or "").split(",")[-1].strip().lower()
    return proto == "https" or _host_name(header(headers, "host") or "") in LOOPBACK_HOSTS


def authenticate_bearer(
    authorization: str,
    headers: Mapping[str, str],
    identities: Identities,
    tokens: Tokens,
    now: float | None = None,
) -> ScopedCaller:
    if not secure_transport(headers):
        raise ServiceError(
            "auth_token_needs_https",
            "a Bearer token is refused over plain http (except to a loopback host)",
        )
    token = authorization.strip().partition(" ")[2].strip()
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise ServiceError("auth_token_malformed", "a token is mct_<16 hex>_<43 base64url>")
    record = tokens.get(match.group(1))
    if record is None or not hmac.compare_digest(record.secret_sha256, secret_sha256(token)):
        raise ServiceError("auth_unknown_token", "no such token", match.group(1))
    _check_live(record, time.time() if now is None else now)
    identity = identities.get(record.identity_id)
    if identity is None:
        raise ServiceError("auth_unknown_token", "the token's identity is gone", record.token_id)
    return ScopedCaller(
        handle=identity.handle,
        identity_id=identity.identity_id,
        is_agent=identity.is_agent,
        # Site-wide admin rights only through an admin token: a narrower one never grants them.
        is_admin=identity.is_admin and record.scope == "admin",
        scope=record.scope,
        token_id=record.token_id,
    )


def _check_live(record: TokenRecord, now: float) -> None:
    if record.revoked_at is not None:
        raise ServiceError("auth_token_revoked", "this token was revoked", record.token_id)
    if record.expires_at is not None and now >= record.expires_at:
        raise ServiceError("auth_token_expired", "this token has expired", record.token_id)
