"""The client half of MSign (protocol section 5): identity key files and request signing.

Deliberately free of muse_core and of the server package: the key file format and the signed
string are the contract, and this module is the reference client for them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SCHEME = "MSign"
SIGNATURE_VERSION = "MSIGN-V1"
IDENTITY_ENV = "MUSE_CLOUD_IDENTITY"

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


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


def identity_id_for(public_key_raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(public_key_raw).hexdigest()


@dataclass(frozen=True)
class KeyFile:
    """An identity's key pair as stored on disk; ``private_key`` is the base64url raw seed."""

    handle: str
    identity_id: str
    private_key: str
    public_key: str
    is_admin: bool = False
    is_agent: bool = False

    def __post_init__(self) -> None:
        # A file whose halves disagree would only surface later as a puzzling 401.
        try:
            derived = _public_raw(_signing_key(self.private_key))
        except ValueError as error:
            raise ValueError(f"key file for {self.handle!r}: bad private key") from error
        if b64url_decode(self.public_key) != derived:
            raise ValueError(f"key file for {self.handle!r}: public key does not match")
        if self.identity_id != identity_id_for(derived):
            raise ValueError(f"key file for {self.handle!r}: identity_id does not match")

    def __repr__(self) -> str:
        # The seed is the identity itself; keep it out of logs, tracebacks and debuggers.
        return (
            f"KeyFile(handle={self.handle!r}, identity_id={self.identity_id!r}, "
            f"private_key='<hidden>', public_key={self.public_key!r}, "
            f"is_admin={self.is_admin!r}, is_agent={self.is_agent!r})"
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeyFile:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a key file")
        try:
            return cls(
                handle=_typed(data, "handle", str),
                identity_id=_typed(data, "identity_id", str),
                private_key=_canonical_b64url(_typed(data, "private_key", str)),
                public_key=_canonical_b64url(_typed(data, "public_key", str)),
                is_admin=_typed(data, "is_admin", bool),
                is_agent=_typed(data, "is_agent", bool),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path}: not a valid key file ({error})") from error

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the file with mode 0600, atomically: a reader sees the old file or the new one."""
        target = Path(path)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = {
            "handle": self.handle,
            "identity_id": self.identity_id,
            "private_key": self.private_key,
            "public_key": self.public_key,
            "is_admin": self.is_admin,
            "is_agent": self.is_agent,
        }
        # mkstemp creates the file 0600 whatever the umask, so the seed is never world-readable.
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                json.dump(data, stream, indent=2)
                stream.write("\n")
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(temp, 0o600)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def signing_key(self) -> Ed25519PrivateKey:
        return _signing_key(self.private_key)


def _typed(data: dict[str, Any], name: str, kind: type[Any]) -> Any:
    value = data[name]
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be {kind.__name__}")
    return value


def _canonical_b64url(text: str) -> str:
    # Files from other clients may carry padding; equal keys should compare equal.
    return b64url_encode(b64url_decode(text))


def _signing_key(private_b64: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(b64url_decode(private_b64))


def _public_raw(key: Ed25519PrivateKey) -> bytes:
    public: Ed25519PublicKey = key.public_key()
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def new_identity(handle: str, is_admin: bool = False, is_agent: bool = False) -> KeyFile:
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    public = _public_raw(key)
    return KeyFile(
        handle=handle,
        identity_id=identity_id_for(public),
        private_key=b64url_encode(seed),
        public_key=b64url_encode(public),
        is_admin=is_admin,
        is_agent=is_agent,
    )


def default_identity_path() -> Path:
    """``$MUSE_CLOUD_IDENTITY``, else ``~/.config/muse-cloud/identity.json``.

    Exactly the protocol's section 5 (no ``$XDG_CONFIG_HOME``): every client following the
    contract must find the same file.
    """
    explicit = os.environ.get(IDENTITY_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return Path.home() / ".config" / "muse-cloud" / "identity.json"


def canonical_string(method: str, path_with_query: str, ts: str, nonce: str, body: bytes) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    lines = (SIGNATURE_VERSION, method.upper(), path_with_query, ts, nonce, body_hash)
    return "\n".join(lines).encode("utf-8")


def sign_request(
    key: KeyFile,
    method: str,
    path_with_query: str,
    body: bytes,
    now: float | None = None,
    nonce: str | None = None,
) -> str:
    """The ``Authorization`` header value for one request.

    ``path_with_query`` is the path exactly as sent on the wire (percent-encoding included),
    followed by ``?query`` when there is a query string.
    """
    ts = str(int(time.time() if now is None else now))
    nonce = secrets.token_urlsafe(16) if nonce is None else nonce
    message = canonical_string(method, path_with_query, ts, nonce, body)
    sig = b64url_encode(key.signing_key().sign(message))
    return f'{SCHEME} keyId="{key.identity_id}",ts="{ts}",nonce="{nonce}",sig="{sig}"'
