"""Identities: registered by an admin, the first admin from the deployment's own key."""

from __future__ import annotations

from dataclasses import dataclass

from muse_cloud.auth.keys import decode_public_key
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import Caller, Identity
from muse_cloud.domain.names import BOOTSTRAP_ADMIN_HANDLE, validate_handle
from muse_cloud.storage.identities import IdentityStore


@dataclass
class IdentityService:
    identities: IdentityStore

    def register(
        self, caller: Caller, handle: str, public_key: str, is_admin: bool, is_agent: bool
    ) -> Identity:
        if not caller.is_admin:
            code = "auth_required" if caller.is_anonymous else "forbidden"
            raise ServiceError(code, "only an admin may register identities", handle)
        identity = Identity.from_public_key(
            validate_handle(handle),
            decode_public_key(public_key),
            is_admin=is_admin,
            is_agent=is_agent,
        )
        self.identities.register(identity)
        return identity

    def ensure_bootstrap_admin(self, public_key: str) -> Identity:
        """Register the deploy-time admin key as handle ``admin`` unless it already exists.

        Idempotent, also under concurrent deploys: losing the registration race to the same
        key reads back the winner's record. The key is checked before the lookup: a weak key
        registered before weak keys were refused stays unused.
        """
        identity = Identity.from_public_key(
            BOOTSTRAP_ADMIN_HANDLE, decode_public_key(public_key), is_admin=True
        )
        existing = self.identities.get(identity.identity_id)
        if existing is not None:
            return existing
        try:
            self.identities.register(identity)
        except ServiceError as error:
            winner = self.identities.get(identity.identity_id)
            if error.code != "identity_exists" or winner is None:
                raise
            return winner
        return identity
