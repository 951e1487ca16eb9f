"""Requests made to AWS, counted once, at the client: a botocore hook on every client the
composition builds adds each call to the tally of whoever is counting (``counting()``).

The tally travels in a context variable, so concurrent runs (threads, the local stack's
workers) each count their own calls; work fanned out to a pool goes through ``map_in_context``
to count where it was started.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

_current: contextvars.ContextVar[RequestTally | None] = contextvars.ContextVar(
    "muse_request_tally", default=None
)


@dataclass
class RequestTally:
    dynamodb: int = 0
    s3: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, service: str) -> None:
        with self._lock:
            if service == "dynamodb":
                self.dynamodb += 1
            elif service == "s3":
                self.s3 += 1


@contextmanager
def counting() -> Iterator[RequestTally]:
    tally = RequestTally()
    token = _current.set(tally)
    try:
        yield tally
    finally:
        _current.reset(token)


def _count(model: Any, **_: Any) -> None:
    tally = _current.get()
    if tally is not None:
        tally.add(model.service_model.service_name)


def count_requests(client: Any) -> Any:
    """Register the counting hook on ``client`` (a boto3 client); returns the client."""
    client.meta.events.register("before-call", _count)
    return client


Result = TypeVar("Result")
Arg = TypeVar("Arg")


def map_in_context(
    function: Callable[[Arg], Result], items: Iterable[Arg], workers: int
) -> list[Result]:
    """``function`` over ``items`` on a pool, each call in a copy of the caller's context."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(contextvars.copy_context().run, function, i) for i in items]
        return [f.result() for f in futures]
