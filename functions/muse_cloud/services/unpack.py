"""The event path: S3 ObjectCreated notifications (delivered through SQS) to ingestion."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from muse_cloud import aws
from muse_cloud.config import settings
from muse_cloud.errors import ServiceError
from muse_cloud.services.ingest import IngestBusy, IngestService
from muse_cloud.storage.packs import UploadKey

logger = Logger(service="muse-cloud")
metrics = Metrics(namespace="MuseCloud", service="muse-cloud")
tracer = Tracer(service="muse-cloud")
idempotency_config = IdempotencyConfig(
    # The sequencer and event time tell two uploads of the same bytes apart (they share the
    # ETag), so a pack uploaded again after a refused push is ingested again, while a
    # redelivered event (same sequencer, same time) is not.
    event_key_jmespath="[bucket, key, etag, sequencer, event_time]",
    expires_after_seconds=24 * 3600,
)


@lru_cache(maxsize=1)
def ingest_once() -> Callable[..., dict[str, Any]]:
    """Ingestion keyed on the uploaded object (bucket, key, etag), built on first use so that the
    persistence layer gets the same configured client as everything else."""
    persistence = DynamoDBPersistenceLayer(
        table_name=settings().idempotency_table_name, boto3_client=aws.dynamodb()
    )

    @idempotent_function(  # type: ignore[untyped-decorator]
        data_keyword_argument="upload",
        persistence_store=persistence,
        config=idempotency_config,
    )
    def ingest_upload(upload: dict[str, str]) -> dict[str, Any]:
        key = UploadKey.parse(upload["key"])
        assert key is not None
        record = IngestService().ingest(key)
        result = record.as_dict()
        if record.state == "ok":
            metrics.add_metric(
                name="Commits", unit=MetricUnit.Count, value=result["commits_written"]
            )
            metrics.add_metric(
                name="Snapshots", unit=MetricUnit.Count, value=result["snapshots_written"]
            )
            metrics.add_metric(
                name="Objects", unit=MetricUnit.Count, value=result["objects_written"]
            )
            metrics.add_metric(name="Bytes", unit=MetricUnit.Bytes, value=result["bytes"])
            metrics.add_metric(
                name="IngestDuration", unit=MetricUnit.Milliseconds, value=result["total_ms"]
            )
        else:
            metrics.add_metric(name="FailedPushes", unit=MetricUnit.Count, value=1)
        return result

    once: Callable[..., dict[str, Any]] = ingest_upload
    return once


def handle_sqs_record(record: SQSRecord) -> None:
    """One SQS message: an S3 event (or the test event S3 sends when notifications are set)."""
    body = json.loads(record.body)
    if body.get("Event") == "s3:TestEvent":
        return
    for s3_record in S3Event(body).records:
        key = unquote_plus(s3_record.s3.get_object.key)
        upload = UploadKey.parse(key)
        if upload is None:
            logger.warning("ignoring an object outside the upload layout", extra={"key": key})
            continue
        logger.set_correlation_id(upload.mpack_hex)
        try:
            result = ingest_once()(
                upload={
                    "bucket": s3_record.s3.bucket.name,
                    "key": key,
                    "etag": s3_record.s3.get_object.get("eTag", ""),
                    "sequencer": s3_record.s3.get_object.get("sequencer", ""),
                    "event_time": s3_record.event_time,
                }
            )
        except IngestBusy as busy:
            # Another run holds the lease: come back when it runs out rather than after the
            # queue's whole visibility timeout.
            retry_after(record, busy.retry_in)
            raise
        except ServiceError as error:
            if error.status == 404:
                # The pack or its repository is gone (deleted): nothing will ever ingest it.
                logger.warning("nothing to ingest", extra={"code": error.code, "key": key})
                continue
            raise
        logger.info("ingested", extra={"push": result})


def retry_after(record: SQSRecord, seconds: int) -> None:
    """Make a message that will be reported as failed visible again in ``seconds``."""
    *_, account, name = record.event_source_arn.split(":")
    queue_url = f"{aws.sqs().meta.endpoint_url}/{account}/{name}"
    aws.sqs().change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=seconds
    )
