"""The scheduled function on moto's DynamoDB and S3: the same pass through the real clients
(BatchWriteItem deletes, a Scan, S3 listings with their LastModified, DeleteObjects), and the
schedule template.yaml declares."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from histories import linear_history
from services.conftest import OLIVIA

from muse_cloud.composition import Services
from muse_cloud.handlers.gc import lambda_handler
from muse_cloud.storage import keys
from muse_cloud_dev.event_source import LocalLambdaContext
from muse_cloud_dev.provision import Provisioned, load_template
from muse_cloud_dev.server import forget_cached_clients, services

from .conftest import lost_push, push
from .test_sweep import everything_reads


@pytest.fixture
def on_aws(stack: Provisioned, monkeypatch: pytest.MonkeyPatch) -> Services:
    """The server's services on the moto stack, with no grace period."""
    monkeypatch.setenv("MUSE_GC_GRACE_SECONDS", "0")
    forget_cached_clients()
    return services()


SCHEDULED = Path(__file__).resolve().parents[2] / "events" / "gc" / "scheduled.json"


def _run_the_function() -> dict[str, Any]:
    """With the sample event of the schedule (``sam local invoke GcFunction -e`` takes it)."""
    event = json.loads(SCHEDULED.read_text(encoding="utf-8"))
    # Powertools prints the metrics to stdout.
    with contextlib.redirect_stdout(io.StringIO()):
        answer: dict[str, Any] = lambda_handler(event, LocalLambdaContext("GcFunction"))
    return answer


def _table_keys(stack: Provisioned) -> set[tuple[str, str]]:
    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=stack.names.table)
    return {(i["pk"]["S"], i["sk"]["S"]) for page in pages for i in page["Items"]}


def _bucket_keys(stack: Provisioned) -> set[str]:
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=stack.names.bucket)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def test_the_scheduled_pass_collects_a_lost_push_and_a_deleted_repository(
    stack: Provisioned, on_aws: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = on_aws.repos.create(OLIVIA, "olivia", "songs", "public", False)
    history = linear_history(commits=4)
    push(on_aws, kept, history.pack())
    lost = lost_push(on_aws, kept, history, "a", monkeypatch)
    deleted = on_aws.repos.create(OLIVIA, "olivia", "gone", "public", False)
    push(on_aws, deleted, linear_history(commits=3, tag="gone").pack())
    on_aws.repos.delete(OLIVIA, deleted.repo_id)
    before = _table_keys(stack)
    files = _bucket_keys(stack)
    assert any(deleted.repo_id in pk for pk, _ in before)

    summary = _run_the_function()

    after = _table_keys(stack)
    assert summary["complete"] and summary["damaged"] == {}
    assert summary["repositories"] == 2 and summary["busy"] == 0
    gone = before - after
    assert {pk.split("#")[0] for pk, _ in gone} == {"COMMIT", "SNAP", "REPO", "PUSH"}
    assert not any(deleted.repo_id in pk for pk, _ in after)
    # The tombstone waits out any ingestion that began before the deletion.
    assert ("DELETED", deleted.repo_id) in after
    assert lost.head is not None
    snapshot = history.records[lost.head].snapshot_id
    assert {(pk, sk) for pk, sk in gone if kept.repo_id in pk} == {
        tuple(k.values())
        for k in (
            keys.commit(kept.repo_id, lost.head),
            keys.snapshot(kept.repo_id, snapshot),
            keys.pack(kept.repo_id, lost.push_id),
            keys.unfolded_pack(kept.repo_id, lost.push_id),
            # Its bytes left the quotas with it.
            keys.stored_pack(kept.repo_id, lost.push_id),
        )
    }
    assert files - _bucket_keys(stack) == {f"incoming/{kept.repo_id}/{lost.push_id}.mpack"}
    everything_reads(on_aws, kept)
    assert _run_the_function()["items"] == 0


def test_the_function_runs_once_a_day_on_an_eventbridge_schedule() -> None:
    function = load_template()["Resources"]["GcFunction"]["Properties"]
    assert function["Handler"] == "muse_cloud.handlers.gc.lambda_handler"
    (event,) = function["Events"].values()
    assert event == {
        "Type": "Schedule",
        "Properties": {"Schedule": "rate(1 day)", "Description": "one garbage collection pass"},
    }
    statements = [s for policy in function["Policies"] for s in policy["Statement"]]
    assert any("dynamodb:Scan" in s["Action"] for s in statements)
