"""The local stack's periodic save: a forked child writes the state as it was at the fork, while
the stack goes on serving requests."""

from __future__ import annotations

import os
from pathlib import Path

import boto3

from muse_cloud_dev.moto_state import (
    GatedMotoServer,
    RequestGate,
    SavedResources,
    restore_state,
    save_state_aside,
    saved_prefix,
)
from muse_cloud_dev.provision import Provisioned


def _put(table: str, name: str) -> None:
    item = {"pk": {"S": f"SAVED#{name}"}, "sk": {"S": "SAVED"}}
    boto3.client("dynamodb", region_name="us-east-1").put_item(TableName=table, Item=item)


def _held(table: str) -> set[str]:
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=table)["Items"]
    return {i["pk"]["S"] for i in items if i["pk"]["S"].startswith("SAVED#")}


def test_a_save_aside_holds_the_state_of_its_fork(stack: Provisioned, tmp_path: Path) -> None:
    table, path = stack.names.table, tmp_path / "state.pickle"
    resources = SavedResources(tables=(table,), bucket=stack.names.bucket)
    _put(table, "before")
    pid = save_state_aside(path, resources, "prefix", RequestGate())
    assert pid > 0
    # Served while the child writes, and not part of what it writes.
    _put(table, "after")
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert saved_prefix(path) == "prefix"
    assert _held(table) == {"SAVED#before", "SAVED#after"}
    restore_state(path, resources)
    assert _held(table) == {"SAVED#before"}


def test_only_requests_that_may_change_the_saved_state_count(stack: Provisioned) -> None:
    """The periodic save runs when ``changes`` moved: reads of the tables and the bucket, and
    the queue's long polls, leave it where it was."""
    gate = RequestGate()
    server = GatedMotoServer("127.0.0.1", 0, gate)
    server.start()
    try:
        dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=server.url)
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=server.url)
        sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=server.url)
        table, bucket = stack.names.table, stack.names.bucket
        key = {"pk": {"S": "SAVED#x"}, "sk": {"S": "SAVED"}}
        dynamodb.put_item(TableName=table, Item=key)
        s3.put_object(Bucket=bucket, Key="k", Body=b"v")
        assert gate.changes == 2

        dynamodb.get_item(TableName=table, Key=key)
        dynamodb.batch_get_item(RequestItems={table: {"Keys": [key]}})
        dynamodb.query(
            TableName=table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": key["pk"]},
        )
        dynamodb.describe_table(TableName=table)
        s3.get_object(Bucket=bucket, Key="k")["Body"].read()
        s3.head_object(Bucket=bucket, Key="k")
        sqs.receive_message(QueueUrl=stack.queue_url, WaitTimeSeconds=0)
        assert gate.changes == 2

        dynamodb.update_item(
            TableName=table, Key=key, UpdateExpression="SET n = :n",
            ExpressionAttributeValues={":n": {"N": "1"}},
        )  # fmt: skip
        dynamodb.delete_item(TableName=table, Key=key)
        s3.delete_object(Bucket=bucket, Key="k")
        assert gate.changes == 5
    finally:
        server.stop()
