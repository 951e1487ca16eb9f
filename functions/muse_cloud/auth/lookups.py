"""What authentication reads of the stores: identities by id (and the nonces they used), tokens
by id. The stores implement these; authentication itself stays pure."""

from __future__ import annotations

from typing import Protocol

from muse_cloud.domain.identities import Identity
from muse_cloud.domain.tokens import TokenRecord


class Identities(Protocol):
    def get(self, identity_id: str) -> Identity | None: ...

    def remember_nonce(self, identity_id: str, nonce: str, *, now: float | None = None) -> None:
        """Raises ``auth_replayed_nonce`` when the nonce was used already."""
        ...


class Tokens(Protocol):
    def get(self, token_id: str) -> TokenRecord | None: ...
