"""The push flow's API side: presign an upload (in one PUT, or in parts for a large pack, which
a client can resume), complete an upload in parts, run or report its ingestion, show its status."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from muse_cloud.domain.errors import ServiceError, not_found
from muse_cloud.domain.identities import Caller
from muse_cloud.domain.pushes import FINAL_STATES, PushRecord, PushRequest
from muse_cloud.domain.repos import Repo
from muse_cloud.domain.uploads import MAX_SINGLE_PUT_BYTES, PartLayout, UploadedPart
from muse_cloud.services.access import RepoAccessService
from muse_cloud.services.ingest import IngestBusy, IngestService
from muse_cloud.services.quotas import QuotaService
from muse_cloud.storage.layout import UploadKey
from muse_cloud.storage.stores import Stores
from muse_core.errors import MuseError
from muse_core.ids import is_id, require_id, require_mpack_key
from muse_core.paths import validate_branch_name

WAIT_FOR_OTHER_RUN_SECONDS = 20.0
SYNC_LEASE_SECONDS = 60
# Part URLs per answer: a client asks for more as it goes, so none waits long enough to expire.
PART_URLS_PER_ANSWER = 64


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
class PartsUpload:
    """An upload in parts: how the pack is cut, the parts in place (of the right length), and
    PUT URLs for the next parts missing."""

    upload_id: str
    layout: PartLayout
    uploaded: list[UploadedPart]
    part_urls: dict[int, str]
    expires_at: str


@dataclass(frozen=True)
class PresignedPush:
    # None when the pack goes up in parts (``parts``).
    upload_url: str | None
    headers: dict[str, str]
    expires_at: str
    record: PushRecord
    parts: PartsUpload | None = None


@dataclass
class PushService:
    stores: Stores
    access: RepoAccessService
    # Runs with a lease of SYNC_LEASE_SECONDS: a synchronous run lives no longer than the API
    # function (29 s), so if it is cut off, the event path can take the pack over in a minute.
    ingestion: IngestService
    quotas: QuotaService
    max_upload_bytes: int
    # Packs larger than this go up in parts of about ``part_bytes``, for clients that ask to.
    multipart_threshold_bytes: int
    part_bytes: int

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
        multipart: bool = False,
    ) -> PresignedPush:
        """An upload for one pack: one PUT URL, or, for a large pack of a client that can send
        parts (``multipart``), an upload in parts (the one open already, when resuming)."""
        repo = self.access.by_slug(caller, owner, name, "write")
        mpack_hex, branch, head = _checked_request(mpack_key, branch, head)
        limit = self.max_upload_bytes
        if not 0 < size_bytes <= limit:
            raise ServiceError(
                "limit_exceeded" if size_bytes > limit else "invalid_size",
                f"size_bytes must be between 1 and {limit}",
                str(size_bytes),
            )
        in_parts = multipart and size_bytes > self.multipart_threshold_bytes
        if not in_parts and size_bytes > MAX_SINGLE_PUT_BYTES:
            raise ServiceError(
                "limit_exceeded",
                f"one PUT takes at most {MAX_SINGLE_PUT_BYTES} bytes: presign with "
                "multipart to upload a larger pack in parts",
                str(size_bytes),
            )
        self.quotas.admit_push(repo, mpack_hex, size_bytes)
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
        expires = self._expiry()
        if in_parts:
            parts = self._parts(key, self.stores.packs.start_parts(key), size_bytes)
            return PresignedPush(None, {}, expires, record, parts)
        # A pack already in place needs no second upload (status says so); one that happens
        # anyway is tagged back by the ingestion its event triggers.
        url, headers = self.stores.packs.presign_upload(key, size_bytes)
        return PresignedPush(url, headers, expires, record)

    def upload_parts(
        self, caller: Caller, owner: str, name: str, mpack_key: str, upload_id: str
    ) -> PartsUpload:
        """Where an upload in parts stands, and URLs for the next parts missing: what a client
        asks as it goes, and after an interruption, to send only what is not there."""
        repo = self.access.by_slug(caller, owner, name, "write")
        key, _, size = self._upload_of(repo, mpack_key)
        return self._parts(key, upload_id, size)

    def complete_upload(
        self, caller: Caller, owner: str, name: str, mpack_key: str, upload_id: str
    ) -> PushRecord:
        """Join the parts into the pack, once every part is in place at its length; its
        ObjectCreated event then starts ingestion, as a single PUT's does. Completing again
        (a retry whose answer was lost) finds the pack in place."""
        repo = self.access.by_slug(caller, owner, name, "write")
        key, record, size = self._upload_of(repo, mpack_key)
        found = self.stores.packs.uploaded_parts(key, upload_id)
        if found is None:
            if self.stores.packs.uploaded(key):
                return record
            raise _no_upload(upload_id)
        layout = PartLayout.for_size(size, self.part_bytes)
        held = _in_place(found, layout)
        missing = layout.missing(held)
        if missing:
            raise ServiceError(
                "upload_incomplete",
                f"part {missing[0]} of {layout.count} is missing or not "
                f"{layout.length(missing[0])} bytes long: upload it, then complete again",
                str(missing[0]),
            )
        self.stores.packs.complete_parts(key, upload_id, [held[n] for n in sorted(held)])
        return record

    def _upload_of(self, repo: Repo, mpack_key: str) -> tuple[UploadKey, PushRecord, int]:
        """The pack a presign opened a push for, its push, and its size as presigned."""
        mpack_hex, _, _ = _checked_request(mpack_key, None, None)
        record = self.stores.pushes.get(repo.repo_id, mpack_hex)
        if record is None or not record.size_bytes:
            raise ServiceError("upload_not_found", "presign this pack first", mpack_key)
        return UploadKey(repo.repo_id, mpack_hex), record, record.size_bytes

    def _parts(self, key: UploadKey, upload_id: str, size: int) -> PartsUpload:
        layout = PartLayout.for_size(size, self.part_bytes)
        found = self.stores.packs.uploaded_parts(key, upload_id)
        if found is None:
            raise _no_upload(upload_id)
        held = _in_place(found, layout)
        next_parts = layout.missing(held)[:PART_URLS_PER_ANSWER]
        urls = self.stores.packs.part_urls(key, upload_id, layout, next_parts)
        return PartsUpload(upload_id, layout, [held[n] for n in sorted(held)], urls, self._expiry())

    def _expiry(self) -> str:
        seconds = self.stores.packs.upload_expiry_seconds
        return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()

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


def _in_place(found: list[UploadedPart], layout: PartLayout) -> dict[int, UploadedPart]:
    """The parts at their length, by number: one of another length (cut for another size) is
    as good as missing, and is sent again over it."""
    return {
        p.part_number: p
        for p in found
        if p.part_number <= layout.count and p.size == layout.length(p.part_number)
    }


def _no_upload(upload_id: str) -> ServiceError:
    return ServiceError(
        "upload_not_found",
        "no upload in parts of this pack has that id (completed, expired or never started): "
        "presign again",
        upload_id,
    )


def _outcome(record: PushRecord) -> PushRecord:
    """The record of a push that succeeded; the refusal of one that failed, raised."""
    if record.state == "failed" and record.error:
        raise ServiceError(record.error.code, record.error.message, record.error.item)
    assert record.state in FINAL_STATES
    return record
