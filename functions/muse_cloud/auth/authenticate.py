"""Turn a request's headers and body into a Caller (anonymous when it is unsigned)."""

from __future__ import annotations

from collections.abc import Mapping

from muse_cloud.auth import msign, tokens
from muse_cloud.auth.identities import ANONYMOUS, Caller, IdentityStore
from muse_cloud.errors import ServiceError


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def authenticate(
    headers: Mapping[str, str],
    method: str,
    path_with_query: str,
    body: bytes,
    store: IdentityStore,
    now: float | None = None,
) -> Caller:
    """Verify the request's MSign signature or Bearer token, if any, and say who sent it.

    ``path_with_query`` must be the path as the client sent it (raw, percent-encoded), plus
    ``?query`` when there is one. Checks run cheapest first and the nonce is written only after
    the signature holds, so nobody without the key can burn another identity's nonces.
    """
    value = _header(headers, "authorization")
    if value is None:
        return ANONYMOUS
    if tokens.is_bearer(value):
        return tokens.authenticate_bearer(value, headers, store, now=now)
    signed = msign.parse_authorization(value)
    msign.check_timestamp(signed, now)
    identity = store.get(signed.key_id)
    if identity is None:
        raise ServiceError(401, "auth_unknown_key", "no identity has this key", signed.key_id)
    msign.verify_signature(identity.public_key, signed, method, path_with_query, body)
    store.remember_nonce(identity.identity_id, signed.nonce, now=now)
    return Caller.of(identity)
