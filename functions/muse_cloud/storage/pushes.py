"""Push records: one per (repository, mpack key), the state machine every trigger goes through.

pending -> processing (a lease, so the event path and unpack-mpack never ingest one pack at
once, and a crashed run's lease runs out) -> ok | failed. Final states are never left, so a
redelivered event or a repeated call returns the recorded result.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from muse_cloud.domain.pushes import (
    IngestResult,
    Pusher,
    PushRecord,
    PushRequest,
    RefMove,
    Refusal,
    Timings,
)
from muse_cloud.storage import keys
from muse_cloud.storage.backend import (
    NEW_ITEM,
    Below,
    Condition,
    ConditionFailed,
    Equals,
    Item,
    OneOf,
    Table,
    Update,
    all_of,
    any_of,
)
from muse_cloud.storage.gc_hold import GcHolds


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class PushStore:
    table: Table
    gc_holds: GcHolds = field(init=False)

    def __post_init__(self) -> None:
        self.gc_holds = GcHolds(self.table)

    def get(self, repo_id: str, push_id: str) -> PushRecord | None:
        item = self.table.get(keys.push(repo_id, push_id))
        return _from_item(item) if item else None

    def get_many(self, repo_id: str, push_ids: Collection[str]) -> dict[str, PushRecord]:
        items = self.table.get_many(keys.push(repo_id, p) for p in push_ids)
        return {r.push_id: r for r in map(_from_item, items)}

    def open_pending(
        self,
        repo_id: str,
        push_id: str,
        mpack_key: str,
        size_bytes: int,
        branch: str | None,
        head: str | None,
        force: bool,
        heads: Mapping[str, str],
        pusher: Pusher | None = None,
    ) -> PushRecord:
        """Record what a presigned upload is for, and for whom. A push being ingested, or
        ingested for this same target with the refs (``heads``) still there, keeps its record;
        one ingested for another branch or head, or whose ref has moved since (a forced push
        back to an earlier head builds the same bytes), starts again: the pack's data is held
        already, so only the refs remain to move."""
        existing = self.get(repo_id, push_id)
        if existing is not None and (
            existing.state == "processing"
            or (existing.state == "ok" and existing.in_effect(branch, head, heads))
        ):
            return existing
        now = _now()
        record = PushRecord(
            repo_id=repo_id,
            push_id=push_id,
            mpack_key=mpack_key,
            state="pending",
            branch=branch,
            head=head,
            force=force,
            size_bytes=size_bytes,
            created_at=existing.created_at if existing else now,
            updated_at=now,
            pusher=pusher,
        )
        try:
            self._put(record, any_of(NEW_ITEM, OneOf("state", ("pending", "failed", "ok"))))
        except ConditionFailed:
            found = self.get(repo_id, push_id)
            assert found is not None
            return found
        return record

    def claim(
        self,
        repo_id: str,
        push_id: str,
        mpack_key: str,
        lease_seconds: int,
        request: PushRequest | None = None,
    ) -> PushRecord | None:
        """Take the lease, or None when another run holds it, the push is already final, or a
        garbage collection holds the repository (the record's ``lease_until`` then says when
        it ends).

        ``request`` replaces what the presign recorded, so a rerun after a crash targets what
        this run targeted. The lease token makes sure only the holder of the lease can give it
        back or record the outcome.
        """
        now = time.time()
        fields: dict[str, Any] = {
            "state": "processing",
            "lease_until": int(now + lease_seconds),
            "lease_token": uuid.uuid4().hex,
            "updated_at": _now(),
            "repo_id": repo_id,
            "push_id": push_id,
            "mpack_key": mpack_key,
        }
        if request is not None:
            fields.update(branch=request.branch, head=request.head, force=request.force)
        free = any_of(
            NEW_ITEM,
            Equals("state", "pending"),
            all_of(Equals("state", "processing"), Below("lease_until", int(now))),
        )
        update = Update(set=fields, set_if_absent={"created_at": _now()}, add={"attempts": 1})
        try:
            item = self.table.change(keys.push(repo_id, push_id), update, free, returns="ALL_NEW")
        except ConditionFailed:
            return None
        assert item is not None
        claimed = _from_item(item)
        # Read after the claim is written: a collector holding the repository either saw this
        # claim or is seen here (``gc_hold``). A push waits for it before reading anything.
        held_until = self.gc_holds.held_until(repo_id)
        if held_until is not None:
            self.release(claimed, attempted=False, retry_at=held_until)
            return None
        return claimed

    def note_plan(self, repo_id: str, push_id: str, plan: dict[str, str | None]) -> None:
        """Remember each branch's head before the refs move, so a rerun after a crash can still
        report the previous heads."""
        self.table.change(keys.push(repo_id, push_id), Update(set={"plan": plan}))

    def release(
        self, record: PushRecord, attempted: bool = True, retry_at: int | None = None
    ) -> None:
        """Give the lease back after a transient failure, so a retry can claim it at once.

        ``attempted`` False takes back the attempt the claim counted: a run that found nothing
        to ingest (no pack uploaded yet) is no run that died. ``retry_at`` is left in
        ``lease_until`` as when a retry is worth it (a collector's hold ends then).
        """
        update = Update(
            set={"state": "pending", "lease_until": retry_at},
            add={} if attempted else {"attempts": -1},
            remove=("lease_token",),
        )
        with suppress(ConditionFailed):
            self.table.change(keys.push(record.repo_id, record.push_id), update, _held_by(record))

    def finish(
        self,
        record: PushRecord,
        state: Literal["ok", "failed"],
        result: IngestResult | None,
        error: Refusal | None = None,
    ) -> PushRecord:
        """Record the outcome, once: only while this run still holds the lease."""
        final = replace(
            record,
            state=state,
            result=result,
            error=error,
            updated_at=_now(),
            lease_token=None,
            lease_until=None,
        )
        try:
            self._put(final, _held_by(record))
        except ConditionFailed:
            raise LeaseLost(record.push_id) from None
        return final

    def _put(self, record: PushRecord, condition: Condition) -> None:
        self.table.put({**keys.push(record.repo_id, record.push_id), **_to_item(record)}, condition)


class LeaseLost(Exception):
    """Another run took the push over (this one outlived its lease): its outcome will count."""


def _held_by(record: PushRecord) -> Condition:
    return all_of(Equals("state", "processing"), Equals("lease_token", record.lease_token or ""))


def _to_item(record: PushRecord) -> dict[str, Any]:
    return {
        "repo_id": record.repo_id,
        "push_id": record.push_id,
        "mpack_key": record.mpack_key,
        "state": record.state,
        "branch": record.branch,
        "head": record.head,
        "force": record.force,
        "size_bytes": record.size_bytes,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "result": _result_item(record.result) if record.result else None,
        "error": _refusal_item(record.error) if record.error else None,
        "plan": record.plan,
        "attempts": record.attempts,
        "pusher": record.pusher.handle if record.pusher else None,
        "pusher_admin": record.pusher.admin if record.pusher else None,
    }


def _from_item(item: Item) -> PushRecord:
    result = _plain(item.get("result"))
    error = item.get("error")
    return PushRecord(
        repo_id=item["repo_id"],
        push_id=item["push_id"],
        mpack_key=item["mpack_key"],
        state=item["state"],
        branch=item.get("branch"),
        head=item.get("head"),
        force=bool(item.get("force", False)),
        size_bytes=int(item["size_bytes"]) if item.get("size_bytes") is not None else None,
        created_at=item.get("created_at", ""),
        updated_at=item.get("updated_at", ""),
        result=_result(result) if result else None,
        error=Refusal(error["code"], error["message"], error.get("item")) if error else None,
        plan=item.get("plan"),
        attempts=int(item.get("attempts", 0)),
        lease_token=item.get("lease_token"),
        lease_until=int(item["lease_until"]) if item.get("lease_until") is not None else None,
        pusher=Pusher(item.get("pusher"), bool(item["pusher_admin"]))
        if "pusher_admin" in item
        else None,
    )


_TIMINGS = ("verify_ms", "write_ms", "plan_ms", "refs_ms", "total_ms")


def _result_item(result: IngestResult) -> dict[str, Any]:
    timings = result.timings
    return {
        "commits_written": result.commits_written,
        "snapshots_written": result.snapshots_written,
        "objects_written": result.objects_written,
        "bytes": result.bytes,
        "updates": [
            {"branch": u.branch, "head": u.head, "previous_head": u.previous_head}
            for u in result.updates
        ],
        "dynamodb_requests": result.dynamodb_requests,
        "s3_requests": result.s3_requests,
        **{name: getattr(timings, name) for name in _TIMINGS},
    }


def _result(item: Mapping[str, Any]) -> IngestResult:
    return IngestResult(
        commits_written=item["commits_written"],
        snapshots_written=item["snapshots_written"],
        objects_written=item["objects_written"],
        bytes=item["bytes"],
        updates=tuple(
            RefMove(u["branch"], u["head"], u.get("previous_head")) for u in item["updates"]
        ),
        dynamodb_requests=item.get("dynamodb_requests", 0),
        s3_requests=item.get("s3_requests", 0),
        timings=Timings(**{name: item.get(name, 0) for name in _TIMINGS}),
    )


def _refusal_item(refusal: Refusal) -> dict[str, Any]:
    return {"code": refusal.code, "message": refusal.message, "item": refusal.item}


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; records want ints."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value)
    return value
