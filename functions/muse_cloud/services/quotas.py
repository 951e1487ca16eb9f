"""Quotas: what a repository and its owner may store and how often they may push, enforced when
a push asks for its upload, counted when ingestion stores a pack, and shown to the owner."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from muse_cloud.auth.permissions import require_owner
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import Caller
from muse_cloud.domain.names import validate_handle
from muse_cloud.domain.quotas import Quota, Scope, Usage, seconds_left, window_of
from muse_cloud.domain.repos import Repo
from muse_cloud.services.access import RepoAccessService
from muse_cloud.storage.layout import UploadKey
from muse_cloud.storage.quotas import QuotaStore


@dataclass
class QuotaService:
    store: QuotaStore
    access: RepoAccessService
    repository_quota: Quota
    owner_quota: Quota
    clock: Callable[[], float] = time.time

    def admit_push(self, repo: Repo, mpack_hex: str, size: int) -> None:
        """Refuse a push that would store more than a quota allows (a pack stored already
        adds nothing), then count it against the pushes of this minute."""
        held = self.store.holdings(repo.repo_id, repo.owner, mpack_hex)
        adding = 0 if held.pack_held else size
        for scope, name, stored, quota in (
            ("repository", repo.full_name, held.repository, self.repository_quota),
            ("owner", repo.owner, held.owner, self.owner_quota),
        ):
            if stored.bytes + adding > quota.max_bytes:
                raise ServiceError(
                    "quota_exceeded",
                    f"the {scope} {name} stores {stored.bytes:,} of its {quota.max_bytes:,} "
                    f"bytes; a pack of {size:,} bytes would pass that",
                    name,
                )
        now = self.clock()
        refused = self.store.take_push(
            repo.repo_id,
            repo.owner,
            window_of(now),
            self.repository_quota.max_pushes_per_minute,
            self.owner_quota.max_pushes_per_minute,
        )
        if refused is not None:
            name, quota = self._of(refused, repo)
            wait = seconds_left(now)
            raise ServiceError(
                "rate_limited",
                f"the {refused} {name} has pushed {quota.max_pushes_per_minute} times this "
                f"minute, its limit; retry in {wait} s",
                name,
                retry_after=wait,
            )

    def count_stored(self, repo: Repo, upload: UploadKey, size: int) -> None:
        """Ingestion's hook once a pack's bytes are stored for good (idempotent)."""
        self.store.count_stored(repo.repo_id, repo.owner, upload.mpack_hex, size)

    def repository_usage(self, caller: Caller, owner: str, name: str) -> Usage:
        repo = self.access.by_slug(caller, owner, name, "read")
        require_owner(caller, repo.owner, repo.full_name)
        stored, pushes = self.store.repository(repo.repo_id, window_of(self.clock()))
        quota = self.repository_quota
        return Usage("repository", repo.full_name, stored.bytes, stored.packs, pushes, quota)

    def owner_usage(self, caller: Caller, owner: str) -> Usage:
        validate_handle(owner)
        require_owner(caller, owner, owner)
        stored, pushes = self.store.owner(owner, window_of(self.clock()))
        return Usage("owner", owner, stored.bytes, stored.packs, pushes, self.owner_quota)

    def _of(self, scope: Scope, repo: Repo) -> tuple[str, Quota]:
        if scope == "repository":
            return repo.full_name, self.repository_quota
        return repo.owner, self.owner_quota
