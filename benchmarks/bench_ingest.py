"""Benchmark of ingestion through the event path on the protocol's seed workload.

Generates the seed history (1,031 commits, 700 files, 5 changed per commit, 512-byte blobs),
starts moto in-process (as the local stack runs it, ``keep_moto_fast``), provisions the stack
from template.yaml, creates a repository, PUTs the pack to the bucket and lets the S3
notification reach the real unpack handler through SQS, as Lambda's event source mapping would.
Counts the S3 and DynamoDB requests the server's clients make during ingestion only, and
measures memory in a second, identical ingestion (into another repository) so that
tracemalloc's overhead does not distort the timed run.

Run: ``python benchmarks/bench_ingest.py [--profile FILE]``. Prints the figures against the
targets and exits with status 1 when a target is missed or the push does not end ``ok``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from muse_cloud.domain.pushes import PushRecord
from muse_cloud.handlers.unpack import lambda_handler
from muse_cloud.storage.layout import UploadKey
from muse_cloud.telemetry import logger
from muse_cloud_cli.workload import SEED, Workload, generate_history
from muse_cloud_dev.event_source import SqsEventSource
from muse_cloud_dev.moto_state import keep_moto_fast
from muse_cloud_dev.provision import Provisioned, StackNames, provision
from muse_cloud_dev.server import answered, dynamodb, forget_cached_clients, s3, stores
from muse_core.mpack import build_mpack, encode_mpack, mpack_key

REGION = "us-east-1"
MIB = 1024 * 1024
INGEST_TARGET_S = 3.0
S3_REQUESTS_TARGET = 10
MEMORY_HEADROOM_BYTES = 150 * MIB


@dataclass
class RequestCounter:
    """A botocore ``before-call`` hook: requests by operation, items written by table (a
    transaction's ConditionCheck writes nothing: it is counted among the requests' actions,
    not as an item written)."""

    requests: Counter[str] = field(default_factory=Counter)
    items_written: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)  # batch writes run in threads

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        operation: str = model.name
        written: dict[str, int] = {}
        if operation in (
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "BatchWriteItem",
            "TransactWriteItems",
        ):
            body = json.loads(params["body"])
            if operation == "BatchWriteItem":
                written = {t: len(reqs) for t, reqs in body["RequestItems"].items()}
            elif operation == "TransactWriteItems":
                for action in body["TransactItems"]:
                    if "ConditionCheck" not in action:
                        table = next(iter(action.values()))["TableName"]
                        written[table] = written.get(table, 0) + 1
            else:
                written[body["TableName"]] = 1
        with self.lock:
            self.requests[operation] += 1
            self.items_written.update(written)

    @property
    def total(self) -> int:
        return sum(self.requests.values())


@dataclass(frozen=True)
class Run:
    seconds: float
    messages: int
    failures: int
    record: PushRecord
    heads: dict[str, str]
    s3: RequestCounter
    dynamodb: RequestCounter
    maxrss_before: int  # bytes
    maxrss_after: int
    traced_peak: int | None  # bytes, when traced


def maxrss_bytes() -> int:
    # Linux reports ru_maxrss in KiB (macOS in bytes; this benchmark targets Linux).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def ingest(stack: Provisioned, data: bytes, name: str, *, trace: bool) -> Run:
    """Create a repository, PUT the pack, and drain the queue into the unpack handler."""
    repo_id = stores().repos.create("bench", name, "public").repo_id
    key = UploadKey(repo_id, mpack_key(data).removeprefix("sha256:"))
    # The client's upload: a client of its own, so none of its requests are counted.
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=stack.names.bucket, Key=key.s3_key, Body=data
    )
    source = SqsEventSource(
        boto3.client("sqs", region_name=REGION),
        stack.queue_url,
        lambda_handler,
        report_batch_item_failures=stack.report_batch_item_failures,
    )

    s3_calls, dynamodb_calls = RequestCounter(), RequestCounter()
    s3().meta.events.register("before-call.s3", s3_calls)
    dynamodb().meta.events.register("before-call.dynamodb", dynamodb_calls)
    if trace:
        tracemalloc.start()
    rss_before = maxrss_bytes()
    started = time.perf_counter()
    try:
        # The handler logs each result and prints EMF metrics to stdout: keep the report clean.
        with contextlib.redirect_stdout(io.StringIO()):
            messages, failures = source.drain()
        seconds = time.perf_counter() - started
        rss_after = maxrss_bytes()
        peak = tracemalloc.get_traced_memory()[1] if trace else None
    finally:
        if trace:
            tracemalloc.stop()
        s3().meta.events.unregister("before-call.s3", s3_calls)
        dynamodb().meta.events.unregister("before-call.dynamodb", dynamodb_calls)

    record = stores().pushes.get(repo_id, key.mpack_hex)
    if record is None:
        raise SystemExit(f"no push record for {key.mpack_key}")
    return Run(
        seconds=seconds,
        messages=messages,
        failures=failures,
        record=record,
        heads=stores().refs.heads(repo_id),
        s3=s3_calls,
        dynamodb=dynamodb_calls,
        maxrss_before=rss_before,
        maxrss_after=rss_after,
        traced_peak=peak,
    )


def fresh_stack() -> Provisioned:
    names = StackNames.with_prefix("bench")
    os.environ.update(names.environment())
    forget_cached_clients()
    return provision(boto3.Session(region_name=REGION), names)


def use_in_process_moto() -> None:
    """Fake credentials and no endpoint or profile from the environment; quiet logs; moto as
    the local stack runs it (``keep_moto_fast``: the same answers, without moto's own costs
    that AWS does not have, such as a Query sorting the whole table)."""
    keep_moto_fast()
    os.environ.update(
        AWS_DEFAULT_REGION=REGION, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing"
    )
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    logger.setLevel("WARNING")
    # Consuming S3's test event publishes no metric, which Powertools warns about.
    warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)


def drained_stack() -> Provisioned:
    """A fresh stack whose s3:TestEvent (sent when the notification was configured) is consumed."""
    stack = fresh_stack()
    test_event = SqsEventSource(
        boto3.client("sqs", region_name=REGION),
        stack.queue_url,
        lambda_handler,
        report_batch_item_failures=stack.report_batch_item_failures,
    )
    with contextlib.redirect_stdout(io.StringIO()):
        test_event.drain()
    return stack


def mib(value: float) -> str:
    return f"{value / MIB:.1f} MiB"


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def report(workload: Workload, data: bytes, head: str, timed: Run, traced: Run) -> bool:
    """Print the figures; True when every target is met."""
    ok = True
    for run in (timed, traced):
        if run.record.state != "ok" or run.failures or run.heads != {"main": head}:
            print(f"ingestion did not succeed: {answered(run.record)}")
            ok = False
    result = answered(timed.record)
    memory_target = 2 * len(data) + MEMORY_HEADROOM_BYTES
    traced_peak = traced.traced_peak or 0
    rss_growth = timed.maxrss_after - timed.maxrss_before

    print(
        f"workload: {workload.commits} commits x {workload.files} files, "
        f"{workload.changed_per_commit} changed per commit, {workload.blob_bytes}-byte blobs"
    )
    print(
        f"pack: {len(data):,} bytes ({mib(len(data))}); "
        f"{result.get('commits_written')} commits, {result.get('snapshots_written')} snapshots, "
        f"{result.get('objects_written')} objects"
    )
    print(
        "server timings: "
        + ", ".join(f"{k} {result.get(k)}" for k in ("verify_ms", "plan_ms", "write_ms", "refs_ms"))
        + f" (total_ms {result.get('total_ms')})"
    )
    print()
    rows: list[tuple[str, str, str, bool | None]] = [
        (
            "ingestion wall time (S3 event -> SQS -> handler)",
            f"{timed.seconds:.2f} s",
            f"<= {INGEST_TARGET_S:.0f} s",
            timed.seconds <= INGEST_TARGET_S,
        ),
        (
            "S3 requests during ingestion",
            f"{timed.s3.total} ({_breakdown(timed.s3.requests)})",
            f"<= {S3_REQUESTS_TARGET}",
            timed.s3.total <= S3_REQUESTS_TARGET,
        ),
        (
            "DynamoDB requests during ingestion",
            f"{timed.dynamodb.total} ({_breakdown(timed.dynamodb.requests)})",
            "",
            None,
        ),
        (
            "DynamoDB items written",
            f"{sum(timed.dynamodb.items_written.values()):,} "
            f"({_breakdown(timed.dynamodb.items_written)})",
            "",
            None,
        ),
        (
            "peak traced memory during ingestion (tracemalloc, incl. moto)",
            mib(traced_peak),
            f"<= 2 x pack + 150 MiB = {mib(memory_target)}",
            traced_peak <= memory_target,
        ),
        (
            "ru_maxrss before -> after ingestion",
            f"{mib(timed.maxrss_before)} -> {mib(timed.maxrss_after)} (+{mib(rss_growth)})",
            f"growth <= {mib(memory_target)}",
            rss_growth <= memory_target,
        ),
        (
            "traced run (second repository) wall time",
            f"{traced.seconds:.2f} s",
            "tracemalloc overhead",
            None,
        ),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, target, passed in rows:
        mark = "" if passed is None else verdict(passed)
        print(f"{name:<{width}}  {value:<48}  {target:<34}  {mark}")
        ok = ok and passed is not False
    return ok


def _breakdown(counts: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.most_common())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--commits", type=int, default=SEED.commits)
    parser.add_argument("--files", type=int, default=SEED.files)
    parser.add_argument("--changed", type=int, default=SEED.changed_per_commit)
    parser.add_argument("--blob-bytes", type=int, default=SEED.blob_bytes)
    parser.add_argument(
        "--profile", metavar="FILE", help="write a pyinstrument profile of the timed run"
    )
    args = parser.parse_args(argv)
    workload = Workload(args.commits, args.files, args.changed, args.blob_bytes)

    use_in_process_moto()

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        head = generate_history(root, workload)[-1]
        data = encode_mpack(build_mpack(root, ["main"]))
        print(f"seed generated and packed in {time.perf_counter() - started:.1f} s")

    with mock_aws():
        stack = drained_stack()
        if args.profile:
            from pyinstrument import Profiler

            with Profiler(interval=0.001) as profiler:
                timed = ingest(stack, data, "timed", trace=False)
            Path(args.profile).write_text(profiler.output_text(show_all=False))
        else:
            timed = ingest(stack, data, "timed", trace=False)
        traced = ingest(stack, data, "traced", trace=True)
        ok = report(workload, data, head, timed, traced)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
