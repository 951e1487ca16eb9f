"""The push events function: delivers the outbox to the EventBridge bus.

Whatever invokes it (the table's stream, when an outbox item is written; the schedule, which
picks up what a failed run left), it sweeps the whole outbox: an invocation needs nothing from
its event, and two at once share the work by the items' leases.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from muse_cloud.composition import cold_start
from muse_cloud.handlers import imported
from muse_cloud.telemetry import logger, metrics, trace_handler


@logger.inject_lambda_context
@trace_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    published = cold_start.get().events.publish_pending()
    if published:
        metrics.add_metric(name="PushEventsPublished", unit=MetricUnit.Count, value=published)
        logger.info("published push events", extra={"events": published})
    return {"published": published}


imported()
