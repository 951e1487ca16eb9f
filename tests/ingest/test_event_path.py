"""The event path end to end on moto: S3 PUT -> notification on SQS -> unpack handler.

The helpers at the top are shared by the other ingestion tests of this package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from muse_cloud.handlers.unpack import lambda_handler
from muse_cloud.storage.backend import Item
from muse_cloud.storage.dynamo import from_wire
from muse_cloud.storage.layout import UploadKey
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.event_source import LocalLambdaContext, SqsEventSource, sqs_event
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import answered, dynamodb, settings, stores
from muse_core.commits import read_commit
from muse_core.mpack import build_mpack, encode_mpack, mpack_key
from muse_core.refs import list_branches
from muse_core.snapshots import read_snapshot

REGION = "us-east-1"
Message = dict[str, Any]


def upload(
    stack: Provisioned, repo_id: str, data: bytes, *, mpack_hex: str | None = None
) -> UploadKey:
    """PUT ``data`` to the bucket under its own key (or under ``mpack_hex``, to lie about it)."""
    key = UploadKey(repo_id, mpack_hex or mpack_key(data).removeprefix("sha256:"))
    boto3.client("s3").put_object(Bucket=stack.names.bucket, Key=key.s3_key, Body=data)
    return key


def event_source(stack: Provisioned) -> SqsEventSource:
    return SqsEventSource(
        boto3.client("sqs"),
        stack.queue_url,
        lambda_handler,
        report_batch_item_failures=stack.report_batch_item_failures,
    )


def skip_test_event(stack: Provisioned) -> None:
    """Consume the s3:TestEvent S3 sends when the notification is configured."""
    assert event_source(stack).drain() == (1, 0)


def receive(stack: Provisioned, count: int) -> list[Message]:
    """Exactly ``count`` messages off the queue, as one event source batch would hold them."""
    sqs: Any = boto3.client("sqs")
    messages: list[Message] = []
    for _ in range(5):
        answer = sqs.receive_message(
            QueueUrl=stack.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        )
        messages.extend(answer.get("Messages", []))
        if len(messages) >= count:
            break
    assert len(messages) == count, messages
    return messages


def upload_key_of(message: Message) -> UploadKey:
    body = json.loads(message["Body"])
    key = UploadKey.parse(unquote_plus(body["Records"][0]["s3"]["object"]["key"]))
    assert key is not None
    return key


def invoke(stack: Provisioned, messages: list[Message]) -> set[str]:
    """Run the unpack handler on one batch; returns the ids of the messages it failed.

    Powertools raises when every record of a batch failed (Lambda then retries the whole
    batch), which is the same outcome as reporting each of them.
    """
    event = sqs_event(messages, event_source(stack).queue_arn, REGION)
    try:
        response = lambda_handler(event, LocalLambdaContext("UnpackFunction"))
    except BatchProcessingError:
        return {m["MessageId"] for m in messages}
    return {f["itemIdentifier"] for f in response["batchItemFailures"]}


def acknowledge(stack: Provisioned, messages: list[Message]) -> None:
    """Delete what the handler processed, as the event source mapping does."""
    boto3.client("sqs").delete_message_batch(
        QueueUrl=stack.queue_url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ],
    )


def make_visible(stack: Provisioned, message: Message) -> None:
    """End the visibility timeout of a failed message now instead of after 5,400 s."""
    boto3.client("sqs").change_message_visibility(
        QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )


def queue_depth(queue_url: str) -> int:
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


Items = dict[tuple[str, str], Item]


def table_items() -> Items:
    """Every item of the main table (one scan: moto answers scans slowly, so scan once)."""
    found: Items = {}
    paginator = dynamodb().get_paginator("scan")
    for page in paginator.paginate(TableName=settings().table_name, ConsistentRead=True):
        for raw in page.get("Items", []):
            item = from_wire(raw)
            found[(item["pk"], item["sk"])] = item
    return found


def history_items(repo_id: str, items: Items | None = None) -> Items:
    """What a push may add to a repository: commits, snapshots, packs (with their object
    indexes) and refs."""
    history = ("COMMIT#", "SNAP#")
    return {
        (pk, sk): item
        for (pk, sk), item in (table_items() if items is None else items).items()
        if (pk.startswith(history) and pk.split("#")[1] == repo_id)
        or (pk == f"REPO#{repo_id}" and sk.startswith(("REF#", "PACK#")))
    }


def normalised_state(repo_id: str, items: Items | None = None) -> Items:
    """The repository's history items with its id and wall-clock fields taken out, so two
    repositories that received the same pack compare equal."""

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(repo_id, "<repo>")
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items() if k != "updated_at"}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return {
        (scrub(pk), sk): scrub(item) for (pk, sk), item in history_items(repo_id, items).items()
    }


def test_put_event_ingests_history(stack: Provisioned, tmp_path: Path) -> None:
    generate_history(tmp_path, Workload(commits=12, files=20, changed_per_commit=3))
    repo = stores().repos.create("alice", "songs", "public")
    data = encode_mpack(build_mpack(tmp_path, ["main"]))
    key = upload(stack, repo.repo_id, data)

    messages, failures = event_source(stack).drain()

    # The first message is the s3:TestEvent S3 sends when the notification is configured.
    assert (messages, failures) == (2, 0)
    assert stores().refs.heads(repo.repo_id) == list_branches(tmp_path)
    record = stores().pushes.get(repo.repo_id, key.mpack_hex)
    assert record is not None and record.state == "ok"
    assert answered(record)["commits_written"] == 12
    repo_stores = stores()
    head = list_branches(tmp_path)["main"]
    stored = repo_stores.commits.get(repo.repo_id, head)
    assert stored is not None
    assert stored.record.to_dict() == read_commit(tmp_path, head).to_dict()
    snapshot_id = stored.record.snapshot_id
    assert (
        repo_stores.snapshots.manifest(repo.repo_id, snapshot_id)
        == read_snapshot(tmp_path, snapshot_id).manifest
    )


@pytest.mark.parametrize("times", [2])
def test_redelivered_event_ingests_once(stack: Provisioned, tmp_path: Path, times: int) -> None:
    generate_history(tmp_path, Workload(commits=4, files=5, changed_per_commit=1))
    repo = stores().repos.create("alice", "songs", "public")
    data = encode_mpack(build_mpack(tmp_path, ["main"]))
    upload(stack, repo.repo_id, data)
    sqs: Any = boto3.client("sqs")
    message = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10)["Messages"]
    source = event_source(stack)
    for _ in range(times):
        response = lambda_handler(
            sqs_event(message, source.queue_arn, REGION), LocalLambdaContext("unpack")
        )
        assert response["batchItemFailures"] == []
    assert stores().refs.heads(repo.repo_id) == list_branches(tmp_path)
