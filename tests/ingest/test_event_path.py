"""The event path end to end on moto: S3 PUT -> notification on SQS -> unpack handler."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from muse_cloud.handlers.unpack import lambda_handler
from muse_cloud.storage.packs import UploadKey
from muse_cloud.storage.pushes import PushStore
from muse_cloud.storage.receiver import RepoStores
from muse_cloud.storage.refs import RefStore
from muse_cloud.storage.repos import RepoStore
from muse_cloud_cli.event_source import SqsEventSource
from muse_cloud_cli.provision import Provisioned
from muse_cloud_cli.workload import Workload, generate_history
from muse_core.commits import read_commit
from muse_core.mpack import build_mpack, encode_mpack, mpack_key
from muse_core.refs import list_branches
from muse_core.snapshots import read_snapshot


def upload(stack: Provisioned, repo_id: str, data: bytes) -> UploadKey:
    key = UploadKey(repo_id, mpack_key(data).removeprefix("sha256:"))
    boto3.client("s3").put_object(Bucket=stack.names.bucket, Key=key.s3_key, Body=data)
    return key


def event_source(stack: Provisioned) -> SqsEventSource:
    return SqsEventSource(boto3.client("sqs"), stack.queue_url, lambda_handler)


def test_put_event_ingests_history(stack: Provisioned, tmp_path: Path) -> None:
    generate_history(tmp_path, Workload(commits=12, files=20, changed_per_commit=3))
    repo = RepoStore().create("alice", "songs", "public")
    data = encode_mpack(build_mpack(tmp_path, ["main"]))
    key = upload(stack, repo.repo_id, data)

    messages, failures = event_source(stack).drain()

    # The first message is the s3:TestEvent S3 sends when the notification is configured.
    assert (messages, failures) == (2, 0)
    assert RefStore().heads(repo.repo_id) == list_branches(tmp_path)
    record = PushStore().get(repo.repo_id, key.mpack_hex)
    assert record is not None and record.state == "ok"
    assert record.result["commits_written"] == 12
    stores = RepoStores()
    head = list_branches(tmp_path)["main"]
    stored = stores.commits.get(repo.repo_id, head)
    assert stored is not None
    assert stored.record.to_dict() == read_commit(tmp_path, head).to_dict()
    snapshot_id = stored.record.snapshot_id
    assert stores.snapshots.manifest(repo.repo_id, snapshot_id) == read_snapshot(
        tmp_path, snapshot_id
    ).manifest


@pytest.mark.parametrize("times", [2])
def test_redelivered_event_ingests_once(stack: Provisioned, tmp_path: Path, times: int) -> None:
    generate_history(tmp_path, Workload(commits=4, files=5, changed_per_commit=1))
    repo = RepoStore().create("alice", "songs", "public")
    data = encode_mpack(build_mpack(tmp_path, ["main"]))
    upload(stack, repo.repo_id, data)
    sqs = boto3.client("sqs")
    message = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10)["Messages"]
    source = event_source(stack)
    from muse_cloud_cli.event_source import LocalLambdaContext, sqs_event

    for _ in range(times):
        response = lambda_handler(
            sqs_event(message, source.queue_arn, "us-east-1"), LocalLambdaContext("unpack")
        )
        assert response["batchItemFailures"] == []
    assert RefStore().heads(repo.repo_id) == list_branches(tmp_path)
