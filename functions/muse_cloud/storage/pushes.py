"""Push records: one per (repository, mpack key), the state machine every trigger goes through.

pending -> processing (a lease, so the event path and unpack-mpack never ingest one pack at
once, and a crashed run's lease runs out) -> ok | failed. Final states are never left, so a
redelivered event or a repeated call returns the recorded result.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from botocore.exceptions import ClientError

from muse_cloud import aws
from muse_cloud.storage import dynamo, keys

PushState = Literal["pending", "processing", "ok", "failed"]
FINAL_STATES = ("ok", "failed")


@dataclass
class PushRecord:
    repo_id: str
    push_id: str
    mpack_key: str
    state: PushState
    branch: str | None = None
    head: str | None = None
    force: bool = False
    size_bytes: int | None = None
    created_at: str = ""
    updated_at: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    plan: dict[str, str | None] | None = None
    attempts: int = 0
    lease_token: str | None = None
    lease_until: int | None = None

    def targets_other(self, branch: str | None, head: str | None) -> bool:
        """Whether (branch, head) asks for a ref move this ingested push did not make."""
        if branch is None:
            return False
        applied = {u["branch"]: u["head"] for u in self.result.get("updates", [])}
        return branch not in applied or head not in (None, applied[branch])

    def in_effect(self, branch: str | None, head: str | None, heads: Mapping[str, str]) -> bool:
        """Whether this ingested push made the move (branch, head) asks for (every move it made,
        when no branch is given) and ``heads``, the refs now, still show it."""
        applied = {u["branch"]: u["head"] for u in self.result.get("updates", [])}
        if branch is not None and self.targets_other(branch, head):
            return False
        wanted = applied if branch is None else {branch: applied[branch]}
        return all(heads.get(b) == h for b, h in wanted.items())

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "push_id": self.push_id,
            "status": self.state,
            "mpack_key": self.mpack_key,
            "branch": self.branch,
            "head": self.head,
            "force": self.force,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            **self.result,
        }
        if self.error:
            answer["error"] = {k: self.error.get(k) for k in ("code", "message", "item")}
            answer["error"]["http_status"] = self.error.get("status", 422)
        return answer


def _now() -> str:
    return datetime.now(UTC).isoformat()


class PushStore:
    def get(self, repo_id: str, push_id: str) -> PushRecord | None:
        item = dynamo.get_item(keys.push(repo_id, push_id))
        return _from_item(item) if item else None

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
    ) -> PushRecord:
        """Record what a presigned upload is for. A push being ingested, or ingested for this
        same target with the refs (``heads``) still there, keeps its record; one ingested for
        another branch or head, or whose ref has moved since (a forced push back to an earlier
        head builds the same bytes), starts again: the pack's data is held already, so only
        the refs remain to move."""
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
        )
        try:
            _put_record(
                record,
                "attribute_not_exists(pk) OR #s IN (:pending, :failed, :ok)",
                {
                    ":pending": {"S": "pending"},
                    ":failed": {"S": "failed"},
                    ":ok": {"S": "ok"},
                },
            )
        except ClientError as error:
            if not dynamo.is_conditional_failure(error):
                raise
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
        request: tuple[str, str | None, bool] | None = None,
    ) -> PushRecord | None:
        """Take the lease, or None when another run holds it or the push is already final.

        ``request`` (branch, head, force) replaces what the presign recorded, so a rerun after a
        crash targets what this run targeted. The lease token makes sure only the holder of the
        lease can give it back or record the outcome.
        """
        now = time.time()
        update = (
            "SET #s = :processing, lease_until = :lease, lease_token = :token, updated_at = :now, "
            "attempts = if_not_exists(attempts, :zero) + :one, "
            "repo_id = :repo, push_id = :push, mpack_key = :key, "
            "created_at = if_not_exists(created_at, :now)"
        )
        values: dict[str, Any] = {
            ":processing": {"S": "processing"},
            ":pending": {"S": "pending"},
            ":lease": {"N": str(int(now + lease_seconds))},
            ":token": {"S": uuid.uuid4().hex},
            ":epoch": {"N": str(int(now))},
            ":now": {"S": _now()},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
            ":repo": {"S": repo_id},
            ":push": {"S": push_id},
            ":key": {"S": mpack_key},
        }
        names = {"#s": "state"}
        if request is not None:
            branch, head, force = request
            update += ", #branch = :branch, #head = :head, #force = :force"
            names.update({"#branch": "branch", "#head": "head", "#force": "force"})
            values[":branch"] = {"S": branch}
            values[":head"] = {"S": head} if head else {"NULL": True}
            values[":force"] = {"BOOL": force}
        try:
            answer = aws.dynamodb().update_item(
                TableName=dynamo.table(),
                Key=dynamo.to_wire(keys.push(repo_id, push_id)),
                UpdateExpression=update,
                ConditionExpression=(
                    "attribute_not_exists(pk) OR #s = :pending "
                    "OR (#s = :processing AND lease_until < :epoch)"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if dynamo.is_conditional_failure(error):
                return None
            raise
        return _from_item(dynamo.from_wire(answer["Attributes"]))

    def note_plan(self, repo_id: str, push_id: str, plan: dict[str, str | None]) -> None:
        """Remember each branch's head before the refs move, so a rerun after a crash can still
        report the previous heads."""
        aws.dynamodb().update_item(
            TableName=dynamo.table(),
            Key=dynamo.to_wire(keys.push(repo_id, push_id)),
            UpdateExpression="SET #p = :plan",
            ExpressionAttributeNames={"#p": "plan"},
            ExpressionAttributeValues={":plan": dynamo.to_wire({"v": plan})["v"]},
        )

    def release(self, record: PushRecord, attempted: bool = True) -> None:
        """Give the lease back after a transient failure, so a retry can claim it at once.

        ``attempted`` False takes back the attempt the claim counted: a run that found nothing
        to ingest (no pack uploaded yet) is no run that died.
        """
        values: dict[str, Any] = {
            ":pending": {"S": "pending"},
            ":processing": {"S": "processing"},
            ":token": {"S": record.lease_token or ""},
        }
        update = "SET #s = :pending"
        if not attempted:
            update += ", attempts = attempts - :one"
            values[":one"] = {"N": "1"}
        try:
            aws.dynamodb().update_item(
                TableName=dynamo.table(),
                Key=dynamo.to_wire(keys.push(record.repo_id, record.push_id)),
                UpdateExpression=f"{update} REMOVE lease_until, lease_token",
                ConditionExpression="#s = :processing AND lease_token = :token",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if not dynamo.is_conditional_failure(error):
                raise

    def finish(
        self,
        record: PushRecord,
        state: Literal["ok", "failed"],
        result: dict[str, Any],
        error: dict[str, Any] | None = None,
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
            _put_record(
                final,
                "#s = :processing AND lease_token = :token",
                {":processing": {"S": "processing"}, ":token": {"S": record.lease_token or ""}},
            )
        except ClientError as failure:
            if dynamo.is_conditional_failure(failure):
                raise LeaseLost(record.push_id) from None
            raise
        return final


class LeaseLost(Exception):
    """Another run took the push over (this one outlived its lease): its outcome will count."""


def _put_record(record: PushRecord, condition: str, values: dict[str, Any]) -> None:
    """Write the whole record if ``condition`` holds (``#s`` names the state attribute)."""
    item = {**keys.push(record.repo_id, record.push_id), **_to_item(record)}
    aws.dynamodb().put_item(
        TableName=dynamo.table(),
        Item=dynamo.to_wire(item),
        ConditionExpression=condition,
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues=values,
    )


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
        "result": record.result or None,
        "error": record.error,
        "plan": record.plan,
        "attempts": record.attempts,
    }


def _from_item(item: dynamo.Item) -> PushRecord:
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
        result=_plain(item.get("result") or {}),
        error=_plain(item["error"]) if item.get("error") else None,
        plan=item.get("plan"),
        attempts=int(item.get("attempts", 0)),
        lease_token=item.get("lease_token"),
        lease_until=int(item["lease_until"]) if item.get("lease_until") is not None else None,
    )


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; answers want ints and floats."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
