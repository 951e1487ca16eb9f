"""Server half of MSign (protocol section 5): pure parsing and verification, no I/O.

Every refusal is a 401 whose code says which check failed, so a client can tell a clock skew
from a wrong key without guessing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from muse_cloud.auth.edwards import point_problem
from muse_cloud.domain.errors import ServiceError

SCHEME = "msign"
SIGNATURE_VERSION = "MSIGN-V1"
MAX_SKEW_SECONDS = 300
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
NONCE_MIN_CHARS = 16
# Bounds what an unauthenticated caller can make us parse and store (nonces become item keys).
NONCE_MAX_CHARS = 128
MAX_HEADER_CHARS = 1024

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_KEY_ID = re.compile(r"sha256:[0-9a-f]{64}")
_TS = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(rf"[A-Za-z0-9_-]{{{NONCE_MIN_CHARS},{NONCE_MAX_CHARS}}}")
_PARAM = re.compile(r'\s*([A-Za-z]+)="([^"]*)"\s*')
_FIELDS = frozenset({"keyId", "ts", "nonce", "sig"})


@dataclass(frozen=True)
class SignedHeader:
    key_id: str
    ts: str  # as sent: the signed string carries the client's text, not a reformatted number
    nonce: str
    signature: bytes

    @property
    def issued_at(self) -> int:
        return int(self.ts)


def _malformed(message: str) -> ServiceError:
    return ServiceError("auth_malformed", message)


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; anything else is a ValueError."""
    bare = text.rstrip("=")
    padding = len(text) - len(bare)
    if not _B64URL.fullmatch(bare) or len(bare) % 4 == 1:
        raise ValueError("not base64url")
    if padding and (len(bare) + padding) % 4:
        raise ValueError("bad base64url padding")
    try:
        return base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except binascii.Error as error:
        raise ValueError("not base64url") from error


def parse_authorization(header: str) -> SignedHeader:
    if len(header) > MAX_HEADER_CHARS:
        raise _malformed("Authorization header too long")
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != SCHEME:
        raise _malformed("Authorization scheme must be MSign")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        match = _PARAM.fullmatch(part)
        if not match:
            raise _malformed('Authorization parameters must be name="value" pairs')
        name, value = match.groups()
        if name not in _FIELDS or name in fields:
            raise _malformed(f"unexpected or repeated parameter {name!r}")
        fields[name] = value
    missing = sorted(_FIELDS - fields.keys())
    if missing:
        raise _malformed(f"missing parameter(s): {', '.join(missing)}")
    if not _KEY_ID.fullmatch(fields["keyId"]):
        raise _malformed('keyId must be "sha256:" and 64 lowercase hex digits')
    if not _TS.fullmatch(fields["ts"]):
        raise _malformed("ts must be unix seconds")
    if not _NONCE.fullmatch(fields["nonce"]):
        raise _malformed(
            f"nonce must be {NONCE_MIN_CHARS} to {NONCE_MAX_CHARS} characters of [A-Za-z0-9_-]"
        )
    try:
        signature = b64url_decode(fields["sig"])
    except ValueError as error:
        raise _malformed("sig is not base64url") from error
    if len(signature) != SIGNATURE_BYTES:
        raise _malformed(f"sig must be a {SIGNATURE_BYTES}-byte Ed25519 signature")
    return SignedHeader(fields["keyId"], fields["ts"], fields["nonce"], signature)


def canonical_string(method: str, path_with_query: str, ts: str, nonce: str, body: bytes) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    lines = (SIGNATURE_VERSION, method.upper(), path_with_query, ts, nonce, body_hash)
    return "\n".join(lines).encode("utf-8")


def check_timestamp(header: SignedHeader, now: float | None = None) -> None:
    current = time.time() if now is None else now
    if abs(current - header.issued_at) > MAX_SKEW_SECONDS:
        raise ServiceError(
            "auth_stale_timestamp",
            f"ts is more than {MAX_SKEW_SECONDS} s away from the server clock ({int(current)})",
        )


def verify_signature(
    public_key_raw: bytes, header: SignedHeader, method: str, path_with_query: str, body: bytes
) -> None:
    """OpenSSL refuses S >= L itself, but takes a small-order R or key, with which a signature
    verifies without any private key: those are refused first, for keys stored before
    registration refused them too."""
    refused = ServiceError(
        "auth_bad_signature", "signature does not match the request", header.key_id
    )
    if (
        point_problem(public_key_raw) is not None
        or point_problem(header.signature[:32]) is not None
    ):
        raise refused
    message = canonical_string(method, path_with_query, header.ts, header.nonce, body)
    try:
        Ed25519PublicKey.from_public_bytes(public_key_raw).verify(header.signature, message)
    except (InvalidSignature, ValueError) as error:
        raise refused from error
