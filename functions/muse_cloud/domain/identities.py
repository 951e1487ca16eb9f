"""Who a request comes from: identities (a handle and an Ed25519 key) and callers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from muse_cloud.domain.roles import Role


def identity_id_for(public_key: bytes) -> str:
    """Protocol section 5: ``"sha256:" + sha256(raw 32-byte public key)``."""
    return "sha256:" + hashlib.sha256(public_key).hexdigest()


@dataclass(frozen=True)
class Identity:
    identity_id: str
    handle: str
    public_key: bytes
    is_agent: bool = False
    is_admin: bool = False

    @classmethod
    def from_public_key(
        cls, handle: str, public_key: bytes, *, is_agent: bool = False, is_admin: bool = False
    ) -> Identity:
        return cls(identity_id_for(public_key), handle, public_key, is_agent, is_admin)


@dataclass(frozen=True)
class Caller:
    """Who a request comes from; anonymous callers have neither handle nor identity."""

    handle: str | None
    identity_id: str | None
    is_agent: bool = False
    is_admin: bool = False

    @property
    def is_anonymous(self) -> bool:
        return self.identity_id is None

    @classmethod
    def of(cls, identity: Identity) -> Caller:
        return cls(identity.handle, identity.identity_id, identity.is_agent, identity.is_admin)


ANONYMOUS = Caller(handle=None, identity_id=None)


@dataclass(frozen=True)
class ScopedCaller(Caller):
    """A caller authenticated by a personal access token: the token's scope caps every right
    the identity has (a ``read`` token of the owner may only read), never adds to them."""

    scope: Role = "read"
    token_id: str = ""
