"""Branches over real HTTP on the local stack: ``push --delete``, ``repo default``, ``protect``
and ``events``; the push event bus (moto's EventBridge, watched through a rule to a queue as a
consumer would); a redelivered S3 event; and the races that matter, run for real between the
stack's API workers: a deletion racing a push, a force push racing protection being turned on.

The races' outcome is whatever the workers' timing gives; what must hold every time is that the
events are a faithful log of the ref changes: each event starts where the previous one of its
branch ended, the last ends where the branch is, and each change that was answered with success
has exactly one event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

from muse_cloud_cli.client import ClientError, MuseCloudClient, Remote
from muse_cloud_cli.main import main
from muse_cloud_cli.push import PreparedPush, prepare_push, send_push
from muse_cloud_cli.remotes import read_tracking
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.local_stack import LocalStack
from muse_core.mpack import mpack_key
from muse_core.refs import write_branch_ref

SMALL = Workload(commits=2, files=3, changed_per_commit=1, blob_bytes=32)
ROUNDS = 4


def client(stack: LocalStack) -> MuseCloudClient:
    assert stack.admin is not None
    return MuseCloudClient(stack.api_url, stack.admin)


def eventually(check: Callable[[], Any], seconds: float = 30.0) -> Any:
    """``check()`` once it is truthy (the stack publishes events right after each call)."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def logged(stack: LocalStack, name: str) -> list[dict[str, Any]]:
    with client(stack) as api:
        events: list[dict[str, Any]] = api.events("admin", name, limit=1000)["events"]
    return events


def logged_count(stack: LocalStack, name: str, count: int) -> list[dict[str, Any]]:
    """The repository's events once there are ``count``; and a moment later still ``count``."""
    found = eventually(lambda: len(logged(stack, name)) >= count)
    assert found, logged(stack, name)
    time.sleep(1.0)
    events = logged(stack, name)
    assert len(events) == count, events
    return events


@pytest.fixture(scope="module")
def bus_queue(local_stack: LocalStack) -> str:
    """Every event of the stack's push bus, on a queue (boto3 here talks to the stack's moto)."""
    sqs: Any = boto3.client("sqs", region_name="us-east-1")
    events: Any = boto3.client("events", region_name="us-east-1")
    url: str = sqs.create_queue(QueueName=f"{local_stack.prefix}-consumer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    bus = local_stack.names.event_bus
    pattern = json.dumps({"source": ["muse.cloud"], "detail-type": ["Muse Push"]})
    events.put_rule(Name="consumer", EventBusName=bus, EventPattern=pattern)
    events.put_targets(
        Rule="consumer", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn["QueueArn"]}]
    )
    return url


def on_the_bus(queue_url: str, repo: str) -> list[dict[str, Any]]:
    """The bus's events of ``repo`` delivered so far (others are left for their own tests)."""
    sqs: Any = boto3.client("sqs", region_name="us-east-1")
    found: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        mine = [m for m in messages if json.loads(m["Body"])["detail"]["repo"] == repo]
        for message in mine:
            found.append(json.loads(message["Body"])["detail"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if not mine:
            return found


def create(stack: LocalStack, admin: list[str], name: str) -> str:
    assert main(["repo", "create", f"admin/{name}", "--server", stack.api_url, *admin]) == 0
    return f"{stack.api_url}/admin/{name}"


def test_push_delete_default_and_events_from_the_command_line(
    local_stack: LocalStack,
    admin: list[str],
    bus_queue: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / "songs"
    head = generate_history(source, SMALL)[-1]
    remote = create(local_stack, admin, "cli-branches")
    assert main(["push", "-C", str(source), "--remote", remote, "-u", *admin]) == 0
    write_branch_ref(source, "feature/été", head)
    assert main(["push", "-C", str(source), "origin", "feature/été", *admin]) == 0
    assert read_tracking(source, "origin") == {"main": head, "feature/été": head}
    capsys.readouterr()

    assert main(["push", "-C", str(source), "origin", "--delete", "feature/été", *admin]) == 0
    assert capsys.readouterr().out == f"To {remote}\n - [deleted]         feature/été\n"
    assert read_tracking(source, "origin") == {"main": head}
    assert main(["push", "-C", str(source), "origin", "--delete", "feature/été", *admin]) == 1
    assert "error: no_such_branch:" in capsys.readouterr().err
    assert main(["push", "-C", str(source), "origin", "--delete", "main", *admin]) == 1
    assert "error: default_branch: 'main' is the default branch" in capsys.readouterr().err

    events = logged_count(local_stack, "cli-branches", 3)
    assert [(e["ref"], e["created"], e["deleted"]) for e in events] == [
        ("main", True, False),
        ("feature/été", True, False),
        ("feature/été", False, True),
    ]
    assert {e["pusher"] for e in events} == {"admin"}
    assert main(["events", remote]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [e["published_at"] for e in events]
    assert [" ".join(line.split()[1:]) for line in lines] == [
        "admin * [new branch] main -> main",
        "admin * [new branch] feature/été -> feature/été",
        "admin - [deleted] feature/été",
    ]
    bus = on_the_bus(bus_queue, "admin/cli-branches")
    assert sorted(e["event_id"] for e in bus) == sorted(e["event_id"] for e in events)

    write_branch_ref(source, "next", head)
    assert main(["push", "-C", str(source), "origin", "next", *admin]) == 0
    assert (
        main(
            [
                "repo",
                "default",
                "admin/cli-branches",
                "next",
                "--server",
                local_stack.api_url,
                *admin,
            ]
        )
        == 0
    )
    assert "the default branch of admin/cli-branches is next" in capsys.readouterr().out
    assert main(["push", "-C", str(source), "origin", "--delete", "main", *admin]) == 0


def test_protect_from_the_command_line(
    local_stack: LocalStack, admin: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "songs"
    generate_history(source, SMALL)
    remote = create(local_stack, admin, "cli-protect")
    assert main(["push", "-C", str(source), "--remote", remote, "-u", *admin]) == 0
    capsys.readouterr()

    assert main(["protect", "show", remote, *admin]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"rules of {remote} (version 0):"
    assert out[1].split() == [
        ":default",
        "force",
        "push",
        "refused",
        "deletion",
        "refused",
        "push:",
        "writers",
    ]
    assert (
        main(
            [
                "protect",
                "set",
                remote,
                "release/*",
                "--push",
                "admins",
                "--deletion",
                "allow",
                *admin,
            ]
        )
        == 0
    )
    assert main(["protect", "set", remote, ":default", "--force-push", "allow", *admin]) == 0
    capsys.readouterr()
    assert main(["protect", "show", remote, "--json", *admin]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == {
        "version": 2,
        "rules": [
            {"pattern": "release/*", "force_push": False, "deletion": True, "push": "admins"},
            {"pattern": ":default", "force_push": True, "deletion": False, "push": "writers"},
        ],
    }
    assert main(["protect", "remove", remote, "release/*", *admin]) == 0
    assert main(["protect", "remove", remote, "release/*", *admin]) == 1
    assert "error: no_such_rule:" in capsys.readouterr().err


def test_a_redelivered_s3_event_publishes_the_push_once(
    local_stack: LocalStack, admin: list[str], bus_queue: str, tmp_path: Path
) -> None:
    """Every push reaches ingestion twice already (unpack-mpack, and the upload's S3 event);
    here the S3 event comes a third time, as SQS may deliver it."""
    source = tmp_path / "songs"
    generate_history(source, SMALL)
    remote = Remote.parse(create(local_stack, admin, "redelivered"))
    with client(local_stack) as api:
        prepared = prepare_push(api, remote, source, "main")
        result = send_push(api, remote, prepared)
        repo_id = api.refs("admin", "redelivered")["repo_id"]
    key = f"incoming/{repo_id}/{mpack_key(prepared.data).removeprefix('sha256:')}.mpack"
    notification = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": local_stack.names.bucket},
                    "object": {"key": key, "size": len(prepared.data)},
                },
            }
        ]
    }
    assert local_stack.provisioned is not None
    s3: Any = boto3.client("s3", region_name="us-east-1")
    bucket = local_stack.names.bucket
    # Ingestion tags the pack back each time it meets it: tagged as a new upload is, it shows
    # when the redelivered event has been through.
    incoming = [{"Key": "muse-state", "Value": "incoming"}]
    s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": incoming})
    sqs: Any = boto3.client("sqs", region_name="us-east-1")
    sqs.send_message(
        QueueUrl=local_stack.provisioned.queue_url, MessageBody=json.dumps(notification)
    )
    assert eventually(lambda: s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] != incoming)

    [event] = logged_count(local_stack, "redelivered", 1)
    assert event["push_id"] == result.answer["push_id"]
    assert [e["event_id"] for e in on_the_bus(bus_queue, "admin/redelivered")] == [
        event["event_id"]
    ]


def pushed(stack: LocalStack, remote: Remote, prepared: PreparedPush, force: bool) -> str:
    """The answer to one racer's push (each racer a client of its own): ok, or its code."""
    with client(stack) as own:
        try:
            send_push(own, remote, prepared, force=force)
        except ClientError as error:
            return error.code
    return "ok"


def deleted(stack: LocalStack, remote: Remote, branch: str, head: str, after: float) -> str:
    time.sleep(after)
    with client(stack) as own:
        try:
            own.delete_branch(remote.owner, remote.name, branch, head)
        except ClientError as error:
            return error.code
    return "ok"


def forbid_force(stack: LocalStack, repo_id: str, version: int, after: float) -> int:
    """Turn force pushes of the default branch off ``after`` seconds; the rules' new version."""
    time.sleep(after)
    rules = [{"pattern": ":default", "force_push": False}]
    with client(stack) as own:
        changed: int = own.set_protection(repo_id, rules, version)["version"]
    return changed


def assert_events_replay_to(events: list[dict[str, Any]], heads: dict[str, str]) -> None:
    """Each event of a branch starts where the one before ended; the last ends at its head."""
    replayed: dict[str, str | None] = {}
    for event in events:
        assert event["before"] == replayed.get(event["ref"]), (event, replayed)
        replayed[event["ref"]] = event["after"]
    assert {b: h for b, h in replayed.items() if h is not None} == heads


def test_deletions_racing_pushes_leave_a_faithful_log(
    local_stack: LocalStack, admin: list[str], tmp_path: Path
) -> None:
    source = tmp_path / "songs"
    ids = generate_history(source, Workload(commits=2 * ROUNDS, files=3, changed_per_commit=1))
    remote = Remote.parse(create(local_stack, admin, "delete-race"))
    outcomes: list[tuple[str, str]] = []
    with client(local_stack) as api, ThreadPoolExecutor(max_workers=2) as pool:
        # The first branch pushed becomes the default, which is never deleted: main is.
        started = time.perf_counter()
        send_push(api, remote, prepare_push(api, remote, source, "main"))
        # Started later and later through the push (see the force push race below).
        push_seconds = time.perf_counter() - started
        succeeded = 1
        for n in range(ROUNDS):
            branch = f"race/{n}"
            write_branch_ref(source, branch, ids[2 * n])
            send_push(api, remote, prepare_push(api, remote, source, branch))
            write_branch_ref(source, branch, ids[2 * n + 1])
            prepared = prepare_push(api, remote, source, branch)

            push_run = pool.submit(pushed, local_stack, remote, prepared, False)
            after = push_seconds * (n + 0.5) / ROUNDS * 1.5
            delete_run = pool.submit(deleted, local_stack, remote, branch, ids[2 * n], after)
            outcome = (push_run.result(), delete_run.result())
            outcomes.append(outcome)
            # The push wins and the deletion finds the branch moved; or the deletion wins and
            # the push either finds its branch gone or, planned after it, creates it anew.
            assert outcome in {("ok", "ref_conflict"), ("ref_conflict", "ok"), ("ok", "ok")}
            succeeded += 1 + outcome.count("ok")
        heads = api.refs("admin", "delete-race")["branch_heads"]
    print(f"\nraces[delete vs push]: {outcomes}")
    events = logged_count(local_stack, "delete-race", succeeded)
    assert_events_replay_to(events, heads)


def test_force_pushes_racing_protection_leave_a_faithful_log(
    local_stack: LocalStack, admin: list[str], tmp_path: Path
) -> None:
    name = "force-race"
    url = create(local_stack, admin, name)
    remote = Remote.parse(url)
    ours, other = tmp_path / "ours", tmp_path / "other"
    generate_history(ours, SMALL)
    generate_history(other, Workload(commits=1, files=5, changed_per_commit=1))
    outcomes: list[str] = []
    succeeded = 1
    with client(local_stack) as api, ThreadPoolExecutor(max_workers=2) as pool:
        started = time.perf_counter()
        send_push(api, remote, prepare_push(api, remote, ours, "main"))
        # A push takes several calls, the rules' change one: started later and later through
        # the push, it lands before, during and after the push's ref transaction.
        push_seconds = time.perf_counter() - started
        repo_id = api.refs("admin", name)["repo_id"]
        for n in range(ROUNDS):
            allowed = api.set_protection(
                repo_id, [{"pattern": ":default", "force_push": True}], None
            )
            rewrite = tmp_path / f"rewrite{n}"
            generate_history(
                rewrite, Workload(commits=1, files=2, changed_per_commit=1, blob_bytes=n + 8)
            )
            prepared = prepare_push(api, remote, rewrite, "main", force=True)

            push_run = pool.submit(pushed, local_stack, remote, prepared, True)
            after = push_seconds * (n + 0.5) / ROUNDS * 1.5
            protect_run = pool.submit(forbid_force, local_stack, repo_id, allowed["version"], after)
            outcome, version = push_run.result(), protect_run.result()
            assert version == allowed["version"] + 1
            assert outcome in ("ok", "branch_protected")
            outcomes.append(outcome)
            succeeded += outcome == "ok"
            # Protection on: a force push is refused now, whatever the race gave.
            again = prepare_push(api, remote, other, "main", force=True)
            with pytest.raises(ClientError) as refused:
                send_push(api, remote, again, force=True)
            assert refused.value.code == "branch_protected"
        heads = api.refs("admin", name)["branch_heads"]
    print(f"\nraces[force push vs protection]: {outcomes}")
    events = logged_count(local_stack, name, succeeded)
    assert [e["forced"] for e in events] == [False] + [True] * (succeeded - 1)
    assert_events_replay_to(events, heads)
