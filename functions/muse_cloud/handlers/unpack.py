"""The unpack function: SQS batches of S3 upload events, with partial batch failures."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from muse_cloud.services.unpack import (
    handle_sqs_record,
    idempotency_config,
    logger,
    metrics,
    tracer,
)

processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    idempotency_config.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=handle_sqs_record, processor=processor, context=context
    )
