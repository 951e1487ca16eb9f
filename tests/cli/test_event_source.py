"""The local SQS event source mapping reads partial batch responses as Lambda does, and only
when the mapping is configured for them (template.yaml's FunctionResponseTypes)."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from muse_cloud_dev.event_source import SqsEventSource, batch_failures
from muse_cloud_dev.provision import Provisioned, load_template

IDS = ["m1", "m2", "m3"]


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}),
        ({"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}, {"m1", "m3"}),
        # Lambda fails the whole batch for any of these.
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, set(IDS)),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, set(IDS)),
        ({"batchItemFailures": [{"itemIdentifier": "m9"}]}, set(IDS)),
        ({"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m9"}]}, set(IDS)),
        ({"batchItemFailures": [{"id": "m1"}]}, set(IDS)),
        ({"batchItemFailures": ["m1"]}, set(IDS)),
        ({"batchItemFailures": "m1"}, set(IDS)),
        ("not an object", set(IDS)),
    ],
    ids=repr,
)
def test_batch_failures_read_as_lambda_reads_them(response: Any, failed: set[str]) -> None:
    assert batch_failures(response, IDS) == failed


def test_the_template_configures_partial_batch_responses(stack: Provisioned) -> None:
    events = load_template()["Resources"]["UnpackFunction"]["Properties"]["Events"]
    configured = events["IngestQueueEvent"]["Properties"].get("FunctionResponseTypes") or []
    assert stack.report_batch_item_failures == ("ReportBatchItemFailures" in configured)
    assert stack.report_batch_item_failures


def _queue(name: str) -> tuple[Any, str]:
    sqs: Any = boto3.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"message {n}")
    return sqs, url


def _left(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def _failing(pick: Any) -> Any:
    """A handler that reports ``pick(message_ids)`` as its failures."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        ids = [record["messageId"] for record in event["Records"]]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in pick(ids)]}

    return handler


@pytest.mark.parametrize("reported", [True, False])
def test_reported_failures_stay_on_the_queue_only_when_configured(
    stack: Provisioned, reported: bool
) -> None:
    sqs, url = _queue(f"partial-{reported}")
    source = SqsEventSource(
        sqs, url, _failing(lambda ids: ids[:1]), report_batch_item_failures=reported
    )
    assert source.poll_once() == (3, 1 if reported else 0)
    assert _left(sqs, url) == (1 if reported else 0)


@pytest.mark.parametrize("identifier", ["", "no-such-message"])
def test_a_bad_item_identifier_fails_the_whole_batch(stack: Provisioned, identifier: str) -> None:
    sqs, url = _queue(f"bad-{len(identifier)}")
    source = SqsEventSource(
        sqs, url, _failing(lambda ids: [ids[0], identifier]), report_batch_item_failures=True
    )
    assert source.poll_once() == (3, 3)
    assert _left(sqs, url) == 3


def test_an_exception_fails_the_whole_batch_either_way(stack: Provisioned) -> None:
    def broken(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("boom")

    sqs, url = _queue("broken")
    assert SqsEventSource(sqs, url, broken).poll_once() == (3, 3)
    assert _left(sqs, url) == 3


def test_a_message_reaches_the_handler_once_its_delivery_delay_has_passed(
    stack: Provisioned,
) -> None:
    sqs, url = _queue("delayed")
    sent = time.time()
    handled: list[int] = []
    waits: list[float] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        assert waits, "the handler ran before the delivery delay was waited for"
        handled.append(len(event["Records"]))

    source = SqsEventSource(sqs, url, handler, delivery_delay=30.0, sleep=waits.append)
    assert source.poll_once() == (3, 0)
    polled = time.time()
    assert handled == [3]
    # What is left of the delay once the messages were sent and received, waited for once.
    assert len(waits) == 1
    assert 30 - (polled - sent) - 1 < waits[0] <= 30


def test_a_message_older_than_its_delay_is_handed_over_at_once(stack: Provisioned) -> None:
    sqs, url = _queue("late")
    waits: list[float] = []
    source = SqsEventSource(sqs, url, lambda e, c: None, delivery_delay=0.001, sleep=waits.append)
    time.sleep(0.01)
    assert source.poll_once() == (3, 0)
    assert waits == []
