"""Benchmark of guarded ref changes and of the push events publisher, on in-process moto.

Provisions the stack from template.yaml (DynamoDB, EventBridge, with a rule sending the bus's
events to a queue, as a consumer would), then measures:

- a ref change through ``RefChanges`` (the rules and the default branch read, the ref moved in
  one transaction with their checks and the outbox item): time and DynamoDB requests each, beside
  the bare compare-and-swap of the same move (one conditional write);
- the publisher sweeping an outbox of ``--changes`` ref changes: time, events a second, and
  requests per event (DynamoDB and EventBridge), every event then counted on the queue;
- the repository's event log read back whole, and as the events route reads it by default
  (the newest 100), at that size.

Run: ``python benchmarks/bench_push_events.py [--changes N]``. Prints the figures against the
targets and exits with status 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from typing import Any

import boto3
from moto import mock_aws

from muse_cloud.domain.events import PushCounts
from muse_cloud.domain.identities import Caller
from muse_cloud.domain.pushes import Pusher
from muse_cloud.services.ref_changes import RefChanges
from muse_cloud.storage.refs import RefUpdate
from muse_cloud_dev.moto_state import keep_moto_fast
from muse_cloud_dev.provision import StackNames, provision
from muse_cloud_dev.server import forget_cached_clients, services, stores

REGION = "us-east-1"
# Targets: a guarded ref change costs two reads and one transaction more than nothing; the
# publisher keeps up with far more pushes than a repository sees; the log reads back at once.
GUARDED_REQUESTS_TARGET = 3
# Events a second, on moto: ahead of what one unpack worker ingests there (the smallest push
# takes a tenth of a second or more, the seed push seconds).
PUBLISH_RATE_TARGET = 15.0
# The events route's default read (the newest 100) reads those, whatever the log's length:
# one more to tell whether there were more, one more in case the range's start is an item.
# (moto evaluates the whole partition for any Query, so its time says little of AWS's.)
LOG_READ_ITEMS_TARGET = 102
READER = Caller("bench", "sha256:" + "0b" * 32)


class Requests:
    """A botocore ``before-call`` hook counting requests by service and operation, and an
    ``after-call`` one counting the items DynamoDB's queries returned (what a read costs)."""

    def __init__(self) -> None:
        self.counted: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.counted[f"{model.service_model.service_name}:{model.name}"] += 1

    def answered(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query":
            self.counted["dynamodb:Query items"] += len(parsed.get("Items", []))

    def take(self) -> Counter[str]:
        taken, self.counted = self.counted, Counter()
        return taken


def _commit_id(n: int) -> str:
    return f"{n:064x}"


def measure_ref_changes(repo_id: str, rounds: int, requests: Requests) -> dict[str, Any]:
    changes = RefChanges(stores())
    by = Pusher("bench", admin=True)
    guarded: list[float] = []
    bare: list[float] = []
    guarded_requests: Counter[str] = Counter()
    head = _commit_id(0)
    changes.move(repo_id, [RefUpdate("main", None, head)], "p0", by, PushCounts())
    stores().refs.compare_and_swap(repo_id, [RefUpdate("bare", None, head)], "p0")
    requests.take()
    for n in range(1, rounds + 1):
        before, after = _commit_id(n - 1), _commit_id(n)
        started = time.perf_counter()
        assert changes.move(repo_id, [RefUpdate("main", before, after)], f"p{n}", by, PushCounts())
        guarded.append(time.perf_counter() - started)
        guarded_requests += requests.take()
        started = time.perf_counter()
        assert stores().refs.compare_and_swap(repo_id, [RefUpdate("bare", before, after)], "p")
        bare.append(time.perf_counter() - started)
        requests.take()
    return {
        "rounds": rounds,
        "guarded_ms": round(statistics.median(guarded) * 1000, 2),
        "bare_ms": round(statistics.median(bare) * 1000, 2),
        "guarded_requests_each": {k: v / rounds for k, v in sorted(guarded_requests.items())},
    }


def measure_publishing(
    repo_id: str, changes: int, requests: Requests, queue_url: str
) -> dict[str, Any]:
    ref_changes = RefChanges(stores())
    by = Pusher("bench", admin=True)
    sqs: Any = boto3.client("sqs", region_name=REGION)
    services().events.publish_pending()
    sqs.purge_queue(QueueUrl=queue_url)
    for n in range(changes):
        update = RefUpdate(f"topic-{n:05d}", None, _commit_id(n))
        assert ref_changes.move(repo_id, [update], f"push{n}", by, PushCounts(commits=1))
    requests.take()
    started = time.perf_counter()
    published = services().events.publish_pending()
    seconds = time.perf_counter() - started
    counted = requests.take()
    delivered = 0
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        messages = batch.get("Messages", [])
        if not messages:
            break
        delivered += len(messages)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
    started = time.perf_counter()
    logged = stores().events.logged_since(repo_id, "2000-01-01T00:00:00.000000Z")
    log_seconds = time.perf_counter() - started
    requests.take()
    started = time.perf_counter()
    newest = services().events.recent(READER, "bench", "songs", None, 100)
    newest_seconds = time.perf_counter() - started
    assert len(newest.events) == 100 and newest.truncated
    newest_read = requests.take()
    return {
        "changes": changes,
        "published": published,
        "delivered_to_queue": delivered,
        "publish_s": round(seconds, 3),
        "events_per_s": round(published / seconds, 1),
        "requests_per_event": {k: round(v / published, 2) for k, v in sorted(counted.items())},
        "log_entries": len(logged),
        "log_read_all_s": round(log_seconds, 3),
        "log_newest_100_s": round(newest_seconds, 3),
        "log_newest_100_requests": dict(sorted(newest_read.items())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=500, help="ref changes in the outbox")
    parser.add_argument("--rounds", type=int, default=200, help="ref changes timed one by one")
    args = parser.parse_args()
    os.environ.update(
        AWS_DEFAULT_REGION=REGION, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench"
    )
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    names = StackNames.with_prefix("bench")
    os.environ.update(names.environment())
    forget_cached_clients()
    # moto as the local stack runs it: moto copies the whole table once per action of a
    # transaction, and reads all of it for a Query, which would make this a measure of the
    # table's size.
    keep_moto_fast()
    with mock_aws():
        provision(boto3.Session(region_name=REGION), names)
        sqs: Any = boto3.client("sqs", region_name=REGION)
        events: Any = boto3.client("events", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="bench-consumer")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        events.put_rule(
            Name="all",
            EventBusName=names.event_bus,
            EventPattern=json.dumps({"source": ["muse.cloud"]}),
        )
        events.put_targets(
            Rule="all",
            EventBusName=names.event_bus,
            Targets=[{"Id": "q", "Arn": arn["Attributes"]["QueueArn"]}],
        )
        requests = Requests()
        services().stores.table.client.meta.events.register("before-call", requests)  # type: ignore[attr-defined]
        services().stores.table.client.meta.events.register("after-call", requests.answered)  # type: ignore[attr-defined]
        services().stores.bus.client.meta.events.register("before-call", requests)  # type: ignore[attr-defined]
        repo_id = stores().repos.create("bench", "songs", "public").repo_id
        moves = measure_ref_changes(repo_id, args.rounds, requests)
        publishing = measure_publishing(repo_id, args.changes, requests, queue_url)
    forget_cached_clients()

    guarded_requests = sum(moves["guarded_requests_each"].values())
    checks = [
        (
            "DynamoDB requests per guarded ref change",
            guarded_requests,
            GUARDED_REQUESTS_TARGET,
            "<=",
        ),
        ("events published a second (moto)", publishing["events_per_s"], PUBLISH_RATE_TARGET, ">="),
        (
            "items read for the newest 100 events",
            publishing["log_newest_100_requests"].get("dynamodb:Query items", 0),
            LOG_READ_ITEMS_TARGET,
            "<=",
        ),
    ]
    print(json.dumps({"ref_changes": moves, "publishing": publishing}, indent=2))
    failed = publishing["delivered_to_queue"] != publishing["changes"]
    print(f"every event reached the consumer's queue once: {not failed}")
    for label, value, target, sense in checks:
        met = value <= target if sense == "<=" else value >= target
        failed = failed or not met
        print(f"{label}: {value} (target {sense} {target}) {'PASS' if met else 'MISS'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
