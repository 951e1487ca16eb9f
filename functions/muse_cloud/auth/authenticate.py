"""Turn a request's headers and body into a Caller (anonymous when it is unsigned)."""

from __future__ import annotations

from collections.abc import Mapping

from muse_cloud.auth import msign, tokens
from muse_cloud.auth.lookups import Identities, Tokens
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import ANONYMOUS, Caller


def authenticate(
    headers: Mapping[str, str],
    method: str,
    path_with_query: str,
    body: bytes,
    identities: Identities,
    token_records: Tokens,
    now: float | None = None,
) -> Caller:
    """Verify the request's MSign signature or Bearer token, if any, and say who sent it.

    ``path_with_query`` must be the path as the client sent it (raw, percent-encoded), plus
    ``?query`` when there is one. Checks run cheapest first and the nonce is written only after
    the signature holds, so nobody without the key can burn another identity's nonces.
    """
    value = tokens.header(headers, "authorization")
    if value is None:
        return ANONYMOUS
    if tokens.is_bearer(value):
        return tokens.authenticate_bearer(value, headers, identities, token_records, now=now)
    signed = msign.parse_authorization(value)
    msign.check_timestamp(signed, now)
    identity = identities.get(signed.key_id)
    if identity is None:
        raise ServiceError("auth_unknown_key", "no identity has this key", signed.key_id)
    msign.verify_signature(identity.public_key, signed, method, path_with_query, body)
    identities.remember_nonce(identity.identity_id, signed.nonce, now=now)
    return Caller.of(identity)
