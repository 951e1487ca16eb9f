"""The event path after a refused push is presigned again, and while another run holds a pack."""

from __future__ import annotations

import time
from pathlib import Path

import boto3

from muse_cloud.domain.identities import Caller
from muse_cloud.domain.protection import DEFAULT_BRANCH_PATTERN, BranchRule
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import answered, services, stores
from muse_core.mpack import build_mpack, encode_mpack
from muse_core.refs import list_branches

from .test_event_path import event_source, invoke, receive, skip_test_event, upload

OWNER = Caller(handle="alice", identity_id="sha256:" + "0" * 64)


def test_a_forced_retry_of_a_refused_pack_is_ingested_by_the_event_path(
    stack: Provisioned, tmp_path: Path
) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    generate_history(ours, Workload(commits=2, files=3, changed_per_commit=1))
    generate_history(theirs, Workload(commits=3, files=2, changed_per_commit=1))
    repo = stores().repos.create("alice", "songs", "public")
    skip_test_event(stack)
    upload(stack, repo.repo_id, encode_mpack(build_mpack(ours)))
    assert event_source(stack).drain() == (1, 0)

    data = encode_mpack(build_mpack(theirs))
    key = upload(stack, repo.repo_id, data)
    assert event_source(stack).drain() == (1, 0)
    refused = stores().pushes.get(repo.repo_id, key.mpack_hex)
    assert refused is not None and refused.error is not None
    assert answered(refused)["error"]["code"] == "non_fast_forward"

    head = list_branches(theirs)["main"]
    allowed = [BranchRule(DEFAULT_BRANCH_PATTERN, force_push=True)]
    services().branches.protect(OWNER, repo.repo_id, allowed, None)
    services().push.presign(OWNER, "alice", "songs", key.mpack_key, len(data), "main", head, True)
    upload(stack, repo.repo_id, data)  # the same bytes again, so the same ETag
    assert event_source(stack).drain() == (1, 0)

    record = stores().pushes.get(repo.repo_id, key.mpack_hex)
    assert record is not None and record.state == "ok", record
    assert stores().refs.heads(repo.repo_id) == {"main": head}


def test_a_pack_held_by_another_run_is_retried_after_its_lease_not_the_queue_timeout(
    stack: Provisioned, tmp_path: Path
) -> None:
    generate_history(tmp_path, Workload(commits=2, files=3, changed_per_commit=1))
    repo = stores().repos.create("alice", "songs", "public")
    skip_test_event(stack)
    key = upload(stack, repo.repo_id, encode_mpack(build_mpack(tmp_path)))
    held = stores().pushes.claim(repo.repo_id, key.mpack_hex, key.mpack_key, lease_seconds=3)
    assert held is not None

    message = receive(stack, 1)
    assert invoke(stack, message) == {message[0]["MessageId"]}
    sqs = boto3.client("sqs")
    assert "Messages" not in sqs.receive_message(QueueUrl=stack.queue_url)
    time.sleep(3.5)
    again = sqs.receive_message(QueueUrl=stack.queue_url).get("Messages", [])
    assert [m["MessageId"] for m in again] == [message[0]["MessageId"]]
