"""The garbage collection function: one pass per EventBridge schedule (template.yaml), the same
pass ``POST /api/gc`` runs on demand."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from muse_cloud.composition import cold_start
from muse_cloud.handlers import imported
from muse_cloud.telemetry import logger, metrics, trace_handler

# Kept back from the function's timeout: the repository being swept when the budget runs out
# finishes its step, and the report is logged.
RESERVE_SECONDS = 60.0


@logger.inject_lambda_context
@trace_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    budget = context.get_remaining_time_in_millis() / 1000 - RESERVE_SECONDS
    report = cold_start.get().gc.run(budget_seconds=budget)
    outcomes = [r.outcome for r in report.repositories]
    summary = {
        "complete": report.complete,
        "repositories": len(outcomes),
        "busy": outcomes.count("busy"),
        # History a ref needs is missing there: nothing is deleted until someone looks.
        "damaged": {r.repo_id: r.reason for r in report.repositories if r.outcome == "damaged"},
        "items": report.items,
        "bytes": report.bytes,
        "dynamodb_requests": report.dynamodb_requests,
        "s3_requests": report.s3_requests,
    }
    metrics.add_metric(name="GcDeletedItems", unit=MetricUnit.Count, value=report.items)
    metrics.add_metric(name="GcDeletedBytes", unit=MetricUnit.Bytes, value=report.bytes)
    log = logger.error if summary["damaged"] else logger.info
    log("garbage collected", extra=summary)
    return summary


imported()
