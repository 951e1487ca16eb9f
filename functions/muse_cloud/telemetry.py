"""Logs, metrics and traces of both functions (Powertools), and a push's outcome as metrics."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from importlib.util import find_spec
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from muse_cloud.domain.pushes import PushRecord

Handler = TypeVar("Handler", bound=Callable[..., Any])

logger = Logger(service="muse-cloud")
metrics = Metrics(namespace="MuseCloud", service="muse-cloud")


def _handler_tracing() -> Callable[[Handler], Handler]:
    """Powertools' Tracer around each handler where the X-Ray SDK is installed. The functions
    do not bundle it (template.yaml's ``Tracing: Active`` still traces every invocation): it
    brings a second botocore (30 MB) into each function, and its import took 85 ms of every
    cold start."""
    if find_spec("aws_xray_sdk") is None:
        return lambda handler: handler
    from aws_lambda_powertools import Tracer

    return cast(Callable[[Handler], Handler], Tracer(service="muse-cloud").capture_lambda_handler)


trace_handler = _handler_tracing()
# Most invocations record no metric but the cold start: that is no reason for a warning each.
warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)


def record_push_metrics(record: PushRecord) -> None:
    """One push's outcome, on whichever path ingested it."""
    result = record.result
    if record.state != "ok" or result is None:
        metrics.add_metric(name="FailedPushes", unit=MetricUnit.Count, value=1)
        return
    metrics.add_metric(name="Commits", unit=MetricUnit.Count, value=result.commits_written)
    metrics.add_metric(name="Snapshots", unit=MetricUnit.Count, value=result.snapshots_written)
    metrics.add_metric(name="Objects", unit=MetricUnit.Count, value=result.objects_written)
    metrics.add_metric(name="Bytes", unit=MetricUnit.Bytes, value=result.bytes)
    metrics.add_metric(
        name="IngestDuration", unit=MetricUnit.Milliseconds, value=result.timings.total_ms
    )
