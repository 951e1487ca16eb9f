"""Every storage call of an ingestion failing in turn, then redelivery.

A clean run is counted first (N DynamoDB and S3 calls); then, for each k in 1..N and each kind
of fault, a fresh repository receives the same pack with call k failing:

- ``throttle``: the call is refused before it is applied (a throttling ``ClientError``);
- ``timeout``: the call is applied but its answer is lost (a read timeout after the call);
- ``crash``: the process dies at call k: that call and every later one of the run fail, so no
  clean-up the code attempts reaches storage either, and the lease is left to expire.

After the fault no ref may point at history that cannot be read back whole; after the reruns the
repository's items, its S3 keys and the push outcome equal the clean run's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from ingest.test_event_path import normalised_state, table_items, upload

from muse_cloud.domain.pushes import PushRecord
from muse_cloud.services.ingest import IngestBusy
from muse_cloud.storage import dynamo, keys
from muse_cloud.storage.layout import UploadKey
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import answered, dynamodb, s3, services, settings, stores

from .mutations import base_history, base_pack, encode
from .outcomes import assert_refs_whole

DATA = encode(base_pack(base_history()))
KINDS = ("throttle", "timeout", "crash")
# A run that keeps failing would otherwise loop; three reruns are more than any fault needs.
MAX_RERUNS = 3


class Crash(BaseException):
    """The process dies: nothing after this point runs, and no ``except Exception`` sees it."""


@dataclass
class FaultPlan:
    """A botocore hook on the project's own clients: counts calls, fails call ``fail_at``."""

    kind: str = ""
    fail_at: int = 0
    calls: list[str] = field(default_factory=list)

    def before_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        self.calls.append(model.name)
        number = context["attack_call"] = len(self.calls)
        if self.kind == "crash" and number >= self.fail_at > 0:
            raise Crash(f"crash at call {self.fail_at} ({model.name})")
        if self.kind == "throttle" and number == self.fail_at:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                model.name,
            )

    def after_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        if self.kind == "timeout" and context.get("attack_call") == self.fail_at:
            raise ReadTimeoutError(endpoint_url=f"answer of {model.name} lost")


@contextmanager
def faults(plan: FaultPlan) -> Iterator[FaultPlan]:
    hooked = [(dynamodb(), "dynamodb"), (s3(), "s3")]
    for client, service in hooked:
        client.meta.events.register(f"before-call.{service}", plan.before_call)
        client.meta.events.register(f"after-call.{service}", plan.after_call)
    try:
        yield plan
    finally:
        for client, service in hooked:
            client.meta.events.unregister(f"before-call.{service}", plan.before_call)
            client.meta.events.unregister(f"after-call.{service}", plan.after_call)


def expire_lease(upload_key: UploadKey) -> None:
    """What the clock does to a dead run's lease, done now."""
    dynamodb().update_item(
        TableName=settings().table_name,
        Key=dynamo.to_wire(keys.push(upload_key.repo_id, upload_key.mpack_hex)),
        UpdateExpression="SET lease_until = :past",
        ConditionExpression="attribute_exists(lease_until)",
        ExpressionAttributeValues={":past": {"N": "0"}},
    )


def rerun_until_final(upload_key: UploadKey) -> PushRecord:
    """Redelivery: the same upload ingested again, after a dead run's lease expired."""
    for _ in range(MAX_RERUNS):
        try:
            return services().ingest.ingest(upload_key)
        except IngestBusy:
            expire_lease(upload_key)
    raise AssertionError(f"no final outcome after {MAX_RERUNS} reruns")


# What a push record's result held, before an API answer added the record's own fields.
RESULT_FIELDS = (
    "commits_written", "snapshots_written", "objects_written", "bytes", "branch", "head",
    "previous_head",
)  # fmt: skip


def outcome(record: PushRecord) -> dict[str, Any]:
    """What a client is told, without the timings and request counts of the run that told it."""
    result = {
        k: v
        for k, v in answered(record).items()
        if k in RESULT_FIELDS and not k.endswith(("_ms", "_requests")) and k != "updates"
    }
    updates = sorted(
        (u["branch"], u["head"], u["previous_head"]) for u in answered(record)["updates"]
    )
    return {"state": record.state, "error": record.error, "result": result, "updates": updates}


def s3_state(stack: Provisioned, upload_key: UploadKey) -> dict[str, Any]:
    s3: Any = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=stack.names.bucket, Prefix=f"repos/{upload_key.repo_id}/")
    tags = s3.get_object_tagging(Bucket=stack.names.bucket, Key=upload_key.s3_key)["TagSet"]
    return {
        "keys": sorted(
            o["Key"].replace(upload_key.repo_id, "<repo>") for o in listed.get("Contents", [])
        ),
        "tags": sorted((t["Key"], t["Value"]) for t in tags),
    }


@dataclass(frozen=True)
class Final:
    s3: dict[str, Any]
    outcome: dict[str, Any]


def final_state(stack: Provisioned, upload_key: UploadKey, record: PushRecord) -> Final:
    return Final(s3_state(stack, upload_key), outcome(record))


def fresh_upload(stack: Provisioned, name: str) -> UploadKey:
    return upload(stack, stores().repos.create("alice", name, "public").repo_id, DATA)


def clean_run(stack: Provisioned) -> tuple[UploadKey, Final, list[str]]:
    key = fresh_upload(stack, "clean")
    with faults(FaultPlan()) as counted:
        record = services().ingest.ingest(key)
    assert record.state == "ok", record.error
    return key, final_state(stack, key, record), counted.calls


@pytest.mark.parametrize("kind", KINDS)
def test_every_storage_call_failing_in_turn_converges(stack: Provisioned, kind: str) -> None:
    clean_key, clean, calls = clean_run(stack)
    assert len(calls) >= 10, calls
    diverged: list[str] = []
    faulted: dict[str, str] = {}
    for fail_at in range(1, len(calls) + 1):
        key = fresh_upload(stack, f"{kind}-{fail_at}")
        # The fault, or whatever the code made of it, is swallowed: the rerun must repair either.
        with faults(FaultPlan(kind, fail_at)) as plan, suppress(Exception, Crash):
            services().ingest.ingest(key)
        # The faulty run repeats the clean one up to call k, so the fault is always injected.
        assert len(plan.calls) >= fail_at, plan.calls
        failed_call = plan.calls[fail_at - 1]
        assert_refs_whole(key.repo_id)
        final = final_state(stack, key, rerun_until_final(key))
        faulted[key.repo_id] = f"call {fail_at} ({failed_call})"
        if final != clean:
            diverged.append(f"{faulted[key.repo_id]}: {final}")
    # One scan for all repositories: moto scans the whole table, and it grows with every case.
    items = table_items()
    expected = normalised_state(clean_key.repo_id, items)
    for repo_id, fault in faulted.items():
        if normalised_state(repo_id, items) != expected:
            diverged.append(f"{fault}: the stored history differs from the clean run's")
    print(f"\nfaults[{kind}]: {len(calls)} faults injected, one into each of {calls}")
    assert not diverged, "\n".join(diverged)
