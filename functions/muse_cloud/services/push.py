"""The push flow's API side: presign an upload, run or report its ingestion, show its status."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from muse_cloud.auth.identities import Caller
from muse_cloud.config import settings
from muse_cloud.errors import ServiceError, not_found
from muse_cloud.services.access import RepoAccessService
from muse_cloud.services.ingest import IngestBusy, IngestService, PushRequest
from muse_cloud.storage.packs import PackStore, UploadKey
from muse_cloud.storage.pushes import FINAL_STATES, PushRecord, PushStore
from muse_cloud.storage.refs import RefStore
from muse_core.errors import MuseError
from muse_core.paths import validate_branch_name
from muse_core.types import is_id, require_id, require_mpack_key

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
        raise ServiceError(422, error.code, error.message, error.item) from None
    return mpack_key.removeprefix("sha256:"), branch, head


@dataclass
class PushService:
    access: RepoAccessService = field(default_factory=RepoAccessService)
    pushes: PushStore = field(default_factory=PushStore)
    packs: PackStore = field(default_factory=PackStore)
    refs: RefStore = field(default_factory=RefStore)
    # A synchronous run lives no longer than the API function (29 s), so its lease need not
    # either: if it is cut off, the event path can take the pack over within a minute.
    ingestion: IngestService = field(
        default_factory=lambda: IngestService(lease_seconds=SYNC_LEASE_SECONDS)
    )

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
    ) -> dict[str, Any]:
        repo = self.access.by_slug(caller, owner, name, "write")
        mpack_hex, branch, head = _checked_request(mpack_key, branch, head)
        limit = settings().max_upload_bytes
        if not 0 < size_bytes <= limit:
            raise ServiceError(
                413 if size_bytes > limit else 422,
                "limit_exceeded" if size_bytes > limit else "invalid_size",
                f"size_bytes must be between 1 and {limit}",
                str(size_bytes),
            )
        key = UploadKey(repo.repo_id, mpack_hex)
        record = self.pushes.open_pending(
            repo.repo_id,
            mpack_hex,
            mpack_key,
            size_bytes,
            branch,
            head,
            force,
            self.refs.heads(repo.repo_id),
        )
        expires = datetime.now(UTC) + timedelta(seconds=settings().presign_expiry_seconds)
        # A pack already in place needs no second upload (status says so); one that happens
        # anyway is tagged back by the ingestion its event triggers.
        url, headers = self.packs.presign_upload(key, size_bytes)
        return {
            "upload_url": url,
            "push_id": record.push_id,
            "mpack_key": mpack_key,
            "expires_at": expires.isoformat(),
            "headers": headers,
            "status": record.state,
        }

    def unpack(
        self,
        caller: Caller,
        owner: str,
        name: str,
        mpack_key: str,
        branch: str | None,
        head: str | None,
        force: bool,
    ) -> dict[str, Any]:
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
                        409,
                        "push_in_progress",
                        "this pack is being ingested; poll the push status",
                        mpack_hex,
                    ) from None
                time.sleep(0.2)
        return _outcome(record)

    def status(self, caller: Caller, owner: str, name: str, push_id: str) -> dict[str, Any]:
        repo = self.access.by_slug(caller, owner, name, "read")
        record = self.pushes.get(repo.repo_id, push_id) if is_id(push_id) else None
        if record is None:
            raise not_found("push", push_id)
        return record.as_dict()


def _outcome(record: PushRecord) -> dict[str, Any]:
    if record.state == "failed" and record.error:
        error = record.error
        raise ServiceError(
            int(error.get("status", 422)), error["code"], error["message"], error.get("item")
        )
    assert record.state in FINAL_STATES
    return record.as_dict()
