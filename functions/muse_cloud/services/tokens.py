"""Personal access tokens: created, listed and revoked by the identity that owns them.

Only a request signed with the identity's key (MSign) manages its tokens: a token cannot mint,
list or revoke tokens, so a leaked token never outlives a revocation by making another.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from muse_cloud.auth.tokens import NewToken, secret_sha256
from muse_cloud.domain.errors import ServiceError, not_found
from muse_cloud.domain.identities import Caller, ScopedCaller
from muse_cloud.domain.roles import Role
from muse_cloud.domain.tokens import TokenRecord
from muse_cloud.storage.tokens import TokenStore

MAX_NAME_CHARS = 100
MAX_EXPIRY_DAYS = 3650
_TOKEN_ID = re.compile(r"[0-9a-f]{16}")
_NAME = re.compile(r"[^\x00-\x1f\x7f]*")


def _signed_identity(caller: Caller) -> str:
    if caller.is_anonymous or caller.identity_id is None:
        raise ServiceError("auth_required", "managing tokens needs a signed request")
    if isinstance(caller, ScopedCaller):
        raise ServiceError(
            "token_cannot_manage_tokens", "sign the request with the identity's key instead"
        )
    return caller.identity_id


@dataclass(frozen=True)
class CreatedToken:
    record: TokenRecord
    secret: str  # shown once, never stored


@dataclass
class TokenService:
    tokens: TokenStore

    def create(
        self, caller: Caller, name: str, scope: Role, expires_in_days: int | None
    ) -> CreatedToken:
        identity_id = _signed_identity(caller)
        if len(name) > MAX_NAME_CHARS or not _NAME.fullmatch(name):
            raise ServiceError(
                "invalid_token_name", f"at most {MAX_NAME_CHARS} printable characters", name
            )
        if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise ServiceError(
                "invalid_expiry",
                f"expires_in_days must be 1 to {MAX_EXPIRY_DAYS}",
                str(expires_in_days),
            )
        new = NewToken.generate()
        record = TokenRecord(
            token_id=new.token_id,
            identity_id=identity_id,
            name=name,
            scope=scope,
            secret_sha256=secret_sha256(new.secret),
            created_at=datetime.now(UTC).isoformat(),
            expires_at=(
                int(time.time()) + expires_in_days * 86400 if expires_in_days is not None else None
            ),
        )
        self.tokens.create(record)
        return CreatedToken(record, new.secret)

    def list(self, caller: Caller) -> list[TokenRecord]:
        return self.tokens.list_for(_signed_identity(caller))

    def revoke(self, caller: Caller, token_id: str) -> TokenRecord:
        identity_id = _signed_identity(caller)
        revoked = None
        if _TOKEN_ID.fullmatch(token_id):
            revoked = self.tokens.revoke(identity_id, token_id, datetime.now(UTC).isoformat())
        if revoked is None:
            raise not_found("token", token_id)
        return revoked
