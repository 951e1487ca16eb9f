"""The unpack function: SQS batches of S3 events, with partial batch failures.

Most messages are an S3 ObjectCreated notification of an uploaded pack; the push record is what
makes a redelivered message (SQS delivers at least once, S3 notifies at least once) converge:
a final push answers its recorded outcome, a push another run holds is retried when its lease
runs out. The others ask for a fetch pack too long to build in an API call; a pack found built
ends a redelivered one.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

import boto3
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from muse_cloud.composition import CLIENT_CONFIG, cold_start
from muse_cloud.domain.errors import ServiceError
from muse_cloud.handlers import imported
from muse_cloud.services.ingest import NOTHING_TO_INGEST, IngestBusy
from muse_cloud.storage.layout import FetchBuildKey, UploadKey
from muse_cloud.telemetry import logger, metrics, trace_handler

processor = BatchProcessor(event_type=EventType.SQS)


def handle_sqs_record(record: SQSRecord) -> None:
    """One SQS message: an S3 event (or the test event S3 sends when notifications are set)."""
    body = json.loads(record.body)
    if body.get("Event") == "s3:TestEvent":
        return
    for s3_record in S3Event(body).records:
        key = unquote_plus(s3_record.s3.get_object.key)
        build = FetchBuildKey.parse(key)
        if build is not None:
            logger.set_correlation_id(build.request)
            cold_start.get().fetch.build_handed_over(build)
            logger.info("fetch pack build ended", extra={"repo_id": build.repo_id})
            continue
        upload = UploadKey.parse(key)
        if upload is None:
            logger.warning("ignoring an object outside the upload layout", extra={"key": key})
            continue
        logger.set_correlation_id(upload.mpack_hex)
        try:
            pushed = cold_start.get().ingest.ingest(upload)
        except IngestBusy as busy:
            # Another run holds the lease: come back when it runs out rather than after the
            # queue's whole visibility timeout.
            retry_after(record, busy.retry_in)
            raise
        except ServiceError as error:
            if error.code in NOTHING_TO_INGEST:
                # The pack or its repository is gone (deleted): nothing will ever ingest it.
                logger.warning("nothing to ingest", extra={"code": error.code, "key": key})
                continue
            raise
        logger.info("ingested", extra={"push_id": pushed.push_id, "state": pushed.state})


def retry_after(record: SQSRecord, seconds: int) -> None:
    """Make a message that will be reported as failed visible again in ``seconds``."""
    sqs: Any = boto3.client("sqs", config=CLIENT_CONFIG)
    *_, account, name = record.event_source_arn.split(":")
    sqs.change_message_visibility(
        QueueUrl=f"{sqs.meta.endpoint_url}/{account}/{name}",
        ReceiptHandle=record.receipt_handle,
        VisibilityTimeout=seconds,
    )


@logger.inject_lambda_context
@trace_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=handle_sqs_record, processor=processor, context=context
    )


imported()
