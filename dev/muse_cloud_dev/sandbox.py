"""A Lambda sandbox: a worker process of the local stack that runs one function's handler, one
invocation at a time. Powertools keeps per-invocation state in module globals (the resolver's
current event, the batch processor), so concurrent invocations need a
process each, as Lambda gives them an execution environment each."""

from __future__ import annotations

import importlib
import os
import signal
import warnings
from collections.abc import Callable, Mapping
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]

_handlers: dict[str, Handler] = {}


def prepare(environment: Mapping[str, str | None]) -> None:
    """The worker's start: the stack's environment, and Ctrl-C left to the stack to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name, value in environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    # Batches holding only S3's test event publish no metrics, and Powertools warns each time.
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def invoke(target: str, event: dict[str, Any], context: Any) -> Any:
    """Run ``module:function`` on the event; the module is imported on the first invocation."""
    handler = _handlers.get(target)
    if handler is None:
        module, _, function = target.partition(":")
        handler = _handlers[target] = getattr(importlib.import_module(module), function)
    return handler(event, context)


def warm(target: str) -> None:
    """Import the handler ahead of the first request (a cold start paid at the stack's start)."""
    module, _, _ = target.partition(":")
    importlib.import_module(module)
