"""What Lambda's runtime and SQS event source mapping do, for running handlers off AWS: a
context object, and a poller that feeds queue batches to a handler, deletes what succeeded and
leaves reported failures to come back after the visibility timeout (and, after
maxReceiveCount receives, the queue's redrive policy moves them to the dead-letter queue)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LocalLambdaContext:
    function_name: str
    timeout_seconds: int = 900
    memory_limit_in_mb: int = 1769
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return self.aws_request_id

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """SQS ReceiveMessage results in the shape Lambda hands a function."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def batch_failures(response: Any, message_ids: list[str]) -> set[str]:
    """The messages a partial batch response fails, read as Lambda reads it: no response, or
    no or an empty ``batchItemFailures``, is a success; a response that is not an object, a
    list that is not one, or an item whose ``itemIdentifier`` is missing, empty or names no
    message of the batch fails the whole batch."""
    if response is None:
        return set()
    if not isinstance(response, dict):
        return set(message_ids)
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return set(message_ids)
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            return set(message_ids)
        failed.add(identifier)
    return failed


@dataclass
class SqsEventSource:
    """One event source mapping: queue -> handler. With ``report_batch_item_failures`` (the
    mapping's FunctionResponseTypes holds ReportBatchItemFailures) the handler's partial batch
    response says which messages failed; without it, as with Lambda, the response is ignored
    and only an exception fails the batch."""

    sqs: Any
    queue_url: str
    handler: Handler
    function_name: str = "UnpackFunction"
    batch_size: int = 10
    wait_seconds: int = 0
    region: str = "us-east-1"
    queue_arn: str = ""
    report_batch_item_failures: bool = False
    # The handler sees a message no sooner than this long after it was sent. On AWS the S3
    # notification and the mapping's poll take their time, and a client's call to ingest its
    # upload (unpack-mpack, milliseconds after the PUT) claims the pack first; moto notifies at
    # once, so without a delay the event won that race and the client's call waited on it.
    delivery_delay: float = 0.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if not self.queue_arn:
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
            )
            self.queue_arn = attrs["Attributes"]["QueueArn"]

    def poll_once(self) -> tuple[int, int]:
        """Receive one batch and run the handler on it; returns (messages, failures)."""
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0, 0
        self._wait_for_delivery(messages)
        event = sqs_event(messages, self.queue_arn, self.region)
        message_ids = [m["MessageId"] for m in messages]
        try:
            response = self.handler(event, LocalLambdaContext(self.function_name))
        except Exception:
            # A function error fails the whole batch, as with Lambda.
            failed = set(message_ids)
        else:
            reported = self.report_batch_item_failures
            failed = batch_failures(response, message_ids) if reported else set()
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(messages), len(failed)

    def _wait_for_delivery(self, messages: list[dict[str, Any]]) -> None:
        if self.delivery_delay <= 0:
            return
        sent = max(int(m.get("Attributes", {}).get("SentTimestamp", 0)) for m in messages)
        wait = min(sent / 1000 + self.delivery_delay - time.time(), self.delivery_delay)
        if wait > 0:
            self.sleep(wait)

    def drain(self, max_batches: int = 100) -> tuple[int, int]:
        """Poll until the queue answers empty; returns total (messages, failures)."""
        total = failures = 0
        for _ in range(max_batches):
            count, failed = self.poll_once()
            if count == 0:
                break
            total, failures = total + count, failures + failed
        return total, failures
