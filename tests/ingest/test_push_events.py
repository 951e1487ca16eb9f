"""Push events on moto: the S3 event path, redelivered, publishes each ref change once to the
EventBridge bus (seen through a rule that sends the bus's events to a queue, as a consumer's
would); a bus that fails keeps the events for the next sweep; two sweeps share the work."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from histories import History, linear_history

from muse_cloud.domain.identities import Caller
from muse_cloud.domain.repos import Repo
from muse_cloud.handlers.events import lambda_handler
from muse_cloud.services.events import EventService
from muse_cloud.storage.events import EventStore
from muse_cloud_dev.event_source import LocalLambdaContext
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import services, stores
from muse_core.mpack import encode_mpack, mpack_key

from .test_event_path import invoke, make_visible, receive, skip_test_event, upload

OWNER = Caller("olivia", "sha256:" + "0a" * 32)


def route_bus_to_queue(bus: str, queue_url: str) -> None:
    """A rule sending every "Muse Push" event of ``bus`` to the queue, as a consumer sets up."""
    sqs: Any = boto3.client("sqs")
    events: Any = boto3.client("events")
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    pattern = {"source": ["muse.cloud"], "detail-type": ["Muse Push"]}
    events.put_rule(Name="all-pushes", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule="all-pushes",
        EventBusName=bus,
        Targets=[{"Id": "queue", "Arn": arn["Attributes"]["QueueArn"]}],
    )


@pytest.fixture
def bus_queue(stack: Provisioned) -> str:
    url: str = boto3.client("sqs").create_queue(QueueName="push-events")["QueueUrl"]
    route_bus_to_queue(stack.names.event_bus, url)
    return url


def on_the_bus(queue_url: str) -> list[dict[str, Any]]:
    """Every event the bus delivered so far (taken off the queue)."""
    sqs: Any = boto3.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        messages = answer.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def sweep() -> int:
    """One run of the push events function, as its schedule invokes it."""
    answer = lambda_handler({"source": "aws.events"}, LocalLambdaContext("PushEventsFunction"))
    published: int = answer["published"]
    return published


@pytest.fixture
def repo(stack: Provisioned) -> Repo:
    skip_test_event(stack)
    return stores().repos.create("olivia", "songs", "public")


def presigned_upload(
    stack: Provisioned, repo: Repo, history: History, have: list[str] | None = None
) -> str:
    """What a client's presign and PUT leave behind: the push record (with its pusher) and
    the pack in the bucket, whose S3 event is now on the queue."""
    data = encode_mpack(history.pack({"main": history.head}, have=have or []))
    key = mpack_key(data)
    services().push.presign(OWNER, "olivia", "songs", key, len(data), "main", history.head, False)
    upload(stack, repo.repo_id, data)
    return key.removeprefix("sha256:")


def test_a_redelivered_push_publishes_its_ref_change_once(
    stack: Provisioned, repo: Repo, bus_queue: str
) -> None:
    history = linear_history(commits=2)
    push_id = presigned_upload(stack, repo, history)
    message = receive(stack, 1)
    # Delivered three times: each acknowledgement lost, so the queue hands it out again.
    for delivery in range(3):
        assert invoke(stack, message) == set()
        if delivery < 2:
            make_visible(stack, message[0])
            message = receive(stack, 1)
    assert stores().refs.heads(repo.repo_id) == {"main": history.head}

    assert sweep() == 1
    assert sweep() == 0

    [event] = on_the_bus(bus_queue)
    assert (event["source"], event["detail-type"]) == ("muse.cloud", "Muse Push")
    detail = event["detail"]
    assert {k: detail[k] for k in ("repo", "ref", "before", "after", "forced", "pusher")} == {
        "repo": "olivia/songs",
        "ref": "main",
        "before": None,
        "after": history.head,
        "forced": False,
        "pusher": "olivia",
    }
    assert detail["push_id"] == push_id and detail["created"] and not detail["deleted"]
    assert detail["counts"]["commits"] == 2 and detail["counts"]["objects"] > 0
    logged = stores().events.logged_since(repo.repo_id, "2000-01-01T00:00:00.000000Z")
    assert [e.event.event_id for e in logged] == [detail["event_id"]]
    assert stores().events.pending() == []


def test_a_bus_that_fails_keeps_the_events_for_the_next_sweep(
    stack: Provisioned, repo: Repo, bus_queue: str
) -> None:
    events: Any = boto3.client("events")
    bus = stack.names.event_bus
    history = linear_history(commits=1)
    presigned_upload(stack, repo, history)
    assert invoke(stack, receive(stack, 1)) == set()
    events.remove_targets(Rule="all-pushes", EventBusName=bus, Ids=["queue"])
    events.delete_rule(Name="all-pushes", EventBusName=bus)
    events.delete_event_bus(Name=bus)

    with pytest.raises(events.exceptions.ResourceNotFoundException):
        sweep()
    [kept] = stores().events.pending()
    # Given back at once, not left to run out its lease: the next sweep takes it.
    item = stores().table.get(kept.key)
    assert item is not None and "lease_until" not in item

    events.create_event_bus(Name=bus)
    route_bus_to_queue(bus, bus_queue)
    assert sweep() == 1
    assert [e["detail"]["after"] for e in on_the_bus(bus_queue)] == [history.head]


def test_a_publisher_that_dies_after_publishing_leaves_the_same_events_to_the_next(
    stack: Provisioned, repo: Repo, bus_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At least once on the bus, with the same event id: a consumer drops the second copy."""
    presigned_upload(stack, repo, linear_history(commits=1))
    assert invoke(stack, receive(stack, 1)) == set()
    dying = EventService(stores(), services().access, lease_seconds=-1)

    def die(*args: object) -> bool:
        raise RuntimeError("the publisher's sandbox ended here")

    with monkeypatch.context() as patched, pytest.raises(RuntimeError):
        patched.setattr(EventStore, "published", die)
        dying.publish_pending()

    assert sweep() == 1
    first, second = on_the_bus(bus_queue)
    assert first["detail"]["event_id"] == second["detail"]["event_id"]
    logged = stores().events.logged_since(repo.repo_id, "2000-01-01T00:00:00.000000Z")
    assert len(logged) == 1 and stores().events.pending() == []


@pytest.fixture
def meeting(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Two sweeps each list the outbox before either claims anything."""
    barrier = threading.Barrier(2, timeout=30)
    real = EventStore.pending

    def listed_then_wait(self: EventStore) -> Any:
        found = real(self)
        barrier.wait()
        return found

    monkeypatch.setattr(EventStore, "pending", listed_then_wait)
    yield
    monkeypatch.setattr(EventStore, "pending", real)


def test_two_sweeps_at_once_publish_each_event_once(
    stack: Provisioned, repo: Repo, bus_queue: str, meeting: None
) -> None:
    history = linear_history(commits=1)
    for n in range(3):
        have = list(history.order)
        history.add({f"n{n}.mid": bytes([n])})
        presigned_upload(stack, repo, history, have if n else [])
        assert invoke(stack, receive(stack, 1)) == set()

    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = list(pool.map(lambda _: services().events.publish_pending(), range(2)))

    assert sum(counts) == 3
    delivered = [e["detail"]["after"] for e in on_the_bus(bus_queue)]
    assert sorted(delivered) == sorted(history.order[1:])
