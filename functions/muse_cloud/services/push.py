"""The push flow's API side: presign an upload, run or report its ingestion, show its status."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from muse_cloud.domain.errors import ServiceError, not_found
from muse_cloud.domain.identities import Caller
from muse_cloud.domain.pushes import FINAL_STATES, PushRecord, PushRequest
from muse_cloud.services.access import RepoAccessService
from muse_cloud.services.ingest import IngestBusy, IngestService
from muse_cloud.storage.layout import UploadKey
from muse_cloud.storage.stores import Stores
from muse_core.errors import MuseError
from muse_core.ids import is_id, require_id, require_mpack_key
from muse_core.paths import validate_branch_name

WAIT_FOR_OTHER_RUN_SECONDS = 20.0
SYNC_LEASE_SECONDS = 60


def _checked_request(
    mpack_key: str, branch: str | None, head: str | None
) -> tuple[str, str | None, str | None]:
    try:
        require_mpack_key(mpack_key)
        if branch is not None:
            validate_branch_name(branch)
        if head is not None:
            require_id(head, "head")
    except MuseError as error:
        raise ServiceError.from_core(error) from None
    return mpack_key.removeprefix("sha256:"), branch, head


@dataclass(frozen=True)
class PresignedPush:
    upload_url: str
    headers: dict[str, str]
    expires_at: str
    record: PushRecord


@dataclass
class PushService:
    stores: Stores
    access: RepoAccessService
    # Runs with a lease of SYNC_LEASE_SECONDS: a synchronous run lives no longer than the API
    # function (29 s), so if it is cut off, the event path can take the pack over in a minute.
    ingestion: IngestService
    max_upload_bytes: int

    def presign(
        self,
        caller: Caller,
        owner: str,
        name: str,
        mpack_key: str,
        size_bytes: int,
        branch: str | None,
        head: str | None,
        force: bool,
    ) -> PresignedPush:
        repo = self.access.by_slug(caller, owner, name, "write")
        mpack_hex, branch, head = _checked_request(mpack_key, branch, head)
        limit = self.max_upload_bytes
        if not 0 < size_bytes <= limit:
            raise ServiceError(
                "limit_exceeded" if size_bytes > limit else "invalid_size",
                f"size_bytes must be between 1 and {limit}",
                str(size_bytes),
            )
        key = UploadKey(repo.repo_id, mpack_hex)
        record = self.stores.pushes.open_pending(
            repo.repo_id,
            mpack_hex,
            mpack_key,
            size_bytes,
            branch,
            head,
            force,
            self.stores.refs.heads(repo.repo_id),
            pusher=self.access.pusher(caller, repo),
        )
        expires = datetime.now(UTC) + timedelta(seconds=self.stores.packs.upload_expiry_seconds)
        # A pack already in place needs no second upload (status says so); one that happens
        # anyway is tagged back by the ingestion its event triggers.
        url, headers = self.stores.packs.presign_upload(key, size_bytes)
        return PresignedPush(url, headers, expires.isoformat(), record)

    def unpack(
        self,
        caller: Caller,
        owner: str,
        name: str,
        mpack_key: str,
        branch: str | None,
        head: str | None,
        force: bool,
    ) -> PushRecord:
        repo = self.access.by_slug(caller, owner, name, "write")
        mpack_hex, branch, head = _checked_request(mpack_key, branch, head)
        key = UploadKey(repo.repo_id, mpack_hex)
        request = PushRequest(branch, head, force) if branch else None
        deadline = time.monotonic() + WAIT_FOR_OTHER_RUN_SECONDS
        while True:
            try:
                record = self.ingestion.ingest(key, request)
                break
            except IngestBusy:
                # The event path is ingesting this very pack: wait for its recorded result.
                if time.monotonic() > deadline:
                    raise ServiceError(
                        "push_in_progress",
                        "this pack is being ingested; poll the push status",
                        mpack_hex,
                    ) from None
                time.sleep(0.2)
        return _outcome(record)

    def status(self, caller: Caller, owner: str, name: str, push_id: str) -> PushRecord:
        repo = self.access.by_slug(caller, owner, name, "read")
        record = self.stores.pushes.get(repo.repo_id, push_id) if is_id(push_id) else None
        if record is None:
            raise not_found("push", push_id)
        return record


def _outcome(record: PushRecord) -> PushRecord:
    """The record of a push that succeeded; the refusal of one that failed, raised."""
    if record.state == "failed" and record.error:
        raise ServiceError(record.error.code, record.error.message, record.error.item)
    assert record.state in FINAL_STATES
    return record
