"""The whole stack on one machine: moto for S3/SQS/DynamoDB, the API function behind a local HTTP
server that speaks API Gateway's HTTP API (payload v2) to it, and the SQS poller that feeds the
unpack function, as the event source mapping would. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import base64
import json
import logging
import multiprocessing
import os
import re
import secrets
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qsl

import boto3

from muse_cloud_cli.signer import KeyFile, new_identity
from muse_cloud_dev import sandbox
from muse_cloud_dev.event_source import LocalLambdaContext, SqsEventSource
from muse_cloud_dev.moto_state import (
    GatedMotoServer,
    RequestGate,
    SavedResources,
    forget_resources,
    keep_moto_fast,
    restore_state,
    save_state,
    save_state_aside,
    saved_prefix,
)
from muse_cloud_dev.provision import Provisioned, StackNames, provision
from muse_cloud_dev.server import (
    API_HANDLER,
    EVENTS_HANDLER,
    UNPACK_HANDLER,
    api_logger_name,
    ensure_bootstrap_admin,
    forget_cached_clients,
)
from muse_core.limits import Limits

HOST = "127.0.0.1"
REGION = "us-east-1"
ADMIN_KEY_FILE = "admin.json"
STATE_FILE = "state.pickle"
# Concurrent invocations per function (Lambda's would be many more; each here is a process).
API_WORKERS = 3
UNPACK_WORKERS = 2
POLL_WAIT_SECONDS = 1
# When an upload's S3 event reaches the unpack function (see SqsEventSource.delivery_delay).
EVENT_DELIVERY_SECONDS = 1.0
# API Gateway refuses larger request bodies: packs must go to S3 by presigned URL.
MAX_REQUEST_BYTES = 10 * 1024 * 1024

Handler = Callable[[dict[str, Any], Any], Any]

# Bodies API Gateway passes as text; everything else arrives base64-encoded.
_TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml")
# Hop-by-hop and framing headers are the HTTP server's business, not the function's.
_FRAMING_HEADERS = {"content-length", "transfer-encoding", "connection", "keep-alive"}
# RFC 9110: Content-Length = 1*DIGIT (int() would also take "-1", "+5" and "1_0").
_CONTENT_LENGTH = re.compile(r"[0-9]+")


def http_api_event(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    source_ip: str = HOST,
    domain: str = HOST,
) -> dict[str, Any]:
    """The event API Gateway hands a function for one request (HTTP API, payload format 2.0)."""
    # The request target is a path and a query, never a URL: urlsplit would read the start of
    # "//owner/repo/refs" as a host.
    path, _, raw_query = target.partition("?")
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            # API Gateway hands cookies over one by one in their own field, not as a header.
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    # template.yaml routes GET /openapi.json on its own and everything else to ANY /{proxy+}.
    route = "GET /openapi.json" if (method, path) == ("GET", "/openapi.json") else None
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route or "ANY /{proxy+}",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": domain,
            "domainPrefix": domain.split(".", 1)[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route or "ANY /{proxy+}",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if route is None:
        event["pathParameters"] = {"proxy": path.lstrip("/")}
    if body:
        content_type = merged.get("content-type", "").lower()
        text = None
        if content_type.startswith(_TEXT_TYPES):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        event["body"] = text if text is not None else base64.b64encode(body).decode("ascii")
        event["isBase64Encoded"] = text is None
    return event


def http_api_response(answer: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of a function's answer, read as API Gateway reads payload 2.0."""
    if not (isinstance(answer, dict) and "statusCode" in answer):
        # A bare value is API Gateway's shorthand for a 200 JSON answer.
        return 200, [("Content-Type", "application/json")], json.dumps(answer).encode()
    headers = [
        (name, str(value))
        for name, value in (answer.get("headers") or {}).items()
        if name.lower() not in _FRAMING_HEADERS
    ]
    headers.extend(("Set-Cookie", cookie) for cookie in answer.get("cookies") or [])
    body = answer.get("body") or ""
    data = base64.b64decode(body) if answer.get("isBase64Encoded") else str(body).encode("utf-8")
    return int(answer["statusCode"]), headers, data


class _ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, invoke: Handler, verbose: bool) -> None:
        super().__init__((HOST, port), _ApiRequestHandler)
        self.invoke = invoke
        self.verbose = verbose

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-request is routine; anything else deserves the traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _ApiRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # An answer goes out as two writes (headers, then the body): with Nagle's algorithm the
    # body waits for the client's delayed ACK of the headers, 40 ms on every call.
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        server = cast(_ApiServer, self.server)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._refuse(411, "Length Required")
            return
        lengths = set(self.headers.get_all("Content-Length") or [])
        if len(lengths) > 1 or not all(_CONTENT_LENGTH.fullmatch(v) for v in lengths):
            # Unreadable framing: reading on could block or mistake where the next request starts.
            self._refuse(400, "Bad Request")
            return
        length = int(lengths.pop()) if lengths else 0
        if length > MAX_REQUEST_BYTES:
            # Read it all anyway: a client still sending would see a reset, not the answer.
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 16))
                if not chunk:
                    break
                length -= len(chunk)
            self._refuse(413, "Request Entity Too Large")
            return
        body = self.rfile.read(length) if length else b""
        host = f"{HOST}:{server.server_address[1]}"
        event = http_api_event(
            self.command,
            self.path,
            self.headers.items(),
            body,
            source_ip=self.client_address[0],
            domain=host,
        )
        try:
            status, headers, data = http_api_response(
                server.invoke(event, LocalLambdaContext("ApiFunction", timeout_seconds=29))
            )
        except Exception:
            traceback.print_exc()
            status, headers = 500, [("Content-Type", "application/json")]
            data = json.dumps({"message": "Internal Server Error"}).encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _refuse(self, status: int, message: str) -> None:
        self._answer_and_close(status, {"message": message})

    def _answer_and_close(self, status: int, answer: dict[str, str | None]) -> None:
        """After an unread or unwanted body the connection is not reusable."""
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(data)
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What http.server refuses itself (a method no route can take, such as TRACE, or a
        malformed request line) is answered coded, like every answer of the API."""
        method = getattr(self, "command", None) or None
        status = 405 if code == 501 else code
        answer = {
            "code": "method_not_allowed" if code == 501 else "bad_request",
            "message": message or "the request cannot be served",
            "item": method,
        }
        self._answer_and_close(status, answer)

    def log_message(self, format: str, *args: Any) -> None:
        if cast(_ApiServer, self.server).verbose:
            super().log_message(format, *args)


class LocalStack:
    """Start with ``with LocalStack(data_dir) as stack:``; ``stack.api_url`` is the API.

    With ``persist``, the stack's tables and bucket are saved to ``<data_dir>/state.pickle``
    every ``snapshot_seconds`` (when anything was asked of moto since the last save) and on stop,
    and restored on start unless ``reset``.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        api_port: int = 0,
        moto_port: int = 0,
        verbose: bool = False,
        persist: bool = False,
        reset: bool = False,
        snapshot_seconds: float = 30.0,
        api_workers: int = API_WORKERS,
        unpack_workers: int = UNPACK_WORKERS,
        pack_limits: Limits | None = None,
        fetch_build_seconds: float | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.api_port = api_port
        self.moto_port = moto_port
        self.verbose = verbose
        self.persist = persist
        self.reset = reset
        self.snapshot_seconds = snapshot_seconds
        self.api_workers = api_workers
        self.unpack_workers = unpack_workers
        # Unless given, the environment's MUSE_PACK_LIMITS or the functions' own defaults:
        # tests take smaller ones.
        self.pack_limits = pack_limits
        # Unless given, the functions' own: how long a fetch pack builds in an API call before
        # the unpack workers build it (a test gives none, to build every pack there).
        self.fetch_build_seconds = fetch_build_seconds
        self.state_path = self.data_dir / STATE_FILE
        self.admin_key_path = self.data_dir / ADMIN_KEY_FILE
        self.admin: KeyFile | None = None
        self.provisioned: Provisioned | None = None
        self.restored = False
        self.moto_url = ""
        self.api_url = ""
        # moto's backends live as long as the process: fresh names keep two stacks apart.
        self.prefix = f"local-{secrets.token_hex(4)}"
        self.names = StackNames.with_prefix(self.prefix)
        self._gate = RequestGate()
        self._stopping = threading.Event()
        self._saved_env: dict[str, str | None] = {}
        self._undo = ExitStack()
        self._moto: GatedMotoServer | None = None
        self._api: _ApiServer | None = None
        self._pools: list[ProcessPoolExecutor] = []
        self._threads: list[threading.Thread] = []
        self._may_save = False
        # Set when a function ran that may have written the push events outbox; the first sweep
        # delivers what a stop or crash left there.
        self._outbox_written = threading.Event()
        self._outbox_written.set()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def describe_state(self) -> str:
        if not self.persist:
            return "in memory only"
        how = "restored from" if self.restored else "new, saved to"
        return f"{how} {self.state_path} (every {self.snapshot_seconds:g} s and on stop)"

    def _start(self) -> None:
        self._quiet_logs()
        keep_moto_fast()
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.persist and self.reset:
            self.state_path.unlink(missing_ok=True)
        prefix = saved_prefix(self.state_path) if self.persist else None
        if prefix is not None:
            self.prefix = prefix
            self.names = StackNames.with_prefix(prefix)
        self._moto = GatedMotoServer(HOST, self.moto_port, self._gate)
        self._moto.start()
        self.moto_url = self._moto.url
        self._set_environment()
        session = boto3.Session(region_name=REGION)
        self.provisioned = provision(session, self.names)
        if prefix is not None:
            restore_state(self.state_path, self._resources)
            self.restored = True
        self._may_save = self.persist
        self.admin = self._admin_key()
        os.environ["MUSE_BOOTSTRAP_ADMIN_PUBLIC_KEY"] = self.admin.public_key
        ensure_bootstrap_admin(self.admin.public_key)

        environment = {name: os.environ.get(name) for name in self._saved_env}
        if not self.verbose:
            environment["POWERTOOLS_LOG_LEVEL"] = "WARNING"
        api_pool = self._pool(self.api_workers, environment, API_HANDLER)
        unpack_pool = self._pool(self.unpack_workers, environment, UNPACK_HANDLER)
        api = self._then_deliver_events(_invoker(api_pool, API_HANDLER))
        self._api = _ApiServer(self.api_port, api, self.verbose)
        self.api_url = f"http://{HOST}:{self._api.server_address[1]}"
        self._thread("muse-api", self._api.serve_forever)
        for n in range(self.unpack_workers):
            source = SqsEventSource(
                session.client("sqs"),
                self.provisioned.queue_url,
                self._then_deliver_events(_invoker(unpack_pool, UNPACK_HANDLER)),
                batch_size=self.provisioned.batch_size,
                wait_seconds=POLL_WAIT_SECONDS,
                region=REGION,
                report_batch_item_failures=self.provisioned.report_batch_item_failures,
                delivery_delay=EVENT_DELIVERY_SECONDS,
            )
            self._thread(f"muse-poller-{n}", self._poll, source)
        events_pool = self._pool(1, environment, EVENTS_HANDLER)
        self._thread("muse-events", self._deliver_events, _invoker(events_pool, EVENTS_HANDLER))
        if self.persist:
            self._thread("muse-snapshots", self._save_periodically)

    def stop(self) -> None:
        self._stopping.set()
        if self._api is not None:
            # shutdown() waits for serve_forever, so it must only be called once that runs.
            if self._threads:
                self._api.shutdown()
            self._api.server_close()
        for thread in self._threads:
            thread.join()
        self._threads = []
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)
        self._pools = []
        if self._may_save:
            self.save()
            self._may_save = False
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
            forget_resources(self._resources, self.names.queue, self.names.dead_letter_queue)
        self._api = None
        self._restore_environment()
        self._undo.close()

    def save(self) -> int:
        """Save the stack's state now; returns the bytes written."""
        return save_state(self.state_path, self._resources, self.prefix, self._gate)

    @property
    def _resources(self) -> SavedResources:
        return SavedResources(tables=(self.names.table,), bucket=self.names.bucket)

    def _pool(
        self, workers: int, environment: dict[str, str | None], target: str
    ) -> ProcessPoolExecutor:
        # Spawned, not forked: this process runs threads (moto, the HTTP server) a fork would
        # copy mid-flight.
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=sandbox.prepare,
            initargs=(environment,),
        )
        # Every sandbox started now, as provisioned concurrency would: a cold start inside a
        # request would make it wait seconds behind an import.
        for _ in range(workers):
            pool.submit(sandbox.warm, target)
        self._pools.append(pool)
        return pool

    def _thread(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _save_periodically(self) -> None:
        saved_at = self._gate.changes
        while not self._stopping.wait(self.snapshot_seconds):
            if self._gate.changes != saved_at:
                saved_at = self._gate.changes
                try:
                    self._save_aside()
                except OSError:
                    traceback.print_exc(file=sys.stderr)

    def _save_aside(self) -> None:
        """A save that keeps requests waiting only while the process forks."""
        pid = save_state_aside(self.state_path, self._resources, self.prefix, self._gate)
        if pid and os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
            print(f"the state was not saved to {self.state_path}", file=sys.stderr)

    def _quiet_logs(self) -> None:
        """moto logs every request; without ``verbose`` the functions' logs and metrics go too."""
        names = ["werkzeug"] if self.verbose else ["werkzeug", api_logger_name()]
        for name in names:
            logger = logging.getLogger(name)
            self._undo.callback(logger.setLevel, logger.level)
            logger.setLevel(logging.WARNING)
        # Batches holding only S3's test event publish no metrics, and Powertools warns.
        self._undo.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message="No application metrics to publish")

    def _set_environment(self) -> None:
        values: dict[str, str | None] = {
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            # Anything that could point boto3 somewhere other than moto goes.
            "AWS_SESSION_TOKEN": None,
            "AWS_PROFILE": None,
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": None,
            "AWS_ENDPOINT_URL_S3": None,
            "AWS_ENDPOINT_URL_SQS": None,
            "AWS_ENDPOINT_URL_DYNAMODB": None,
            "MUSE_BOOTSTRAP_ADMIN_PUBLIC_KEY": None,
            **self.names.environment(),
        }
        if self.pack_limits is not None:
            values["MUSE_PACK_LIMITS"] = json.dumps(asdict(self.pack_limits))
        if self.fetch_build_seconds is not None:
            values["MUSE_FETCH_BUILD_SECONDS"] = str(self.fetch_build_seconds)
        if not self.verbose:
            values["POWERTOOLS_METRICS_DISABLED"] = "true"
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        forget_cached_clients()

    def _restore_environment(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}
        forget_cached_clients()

    def _admin_key(self) -> KeyFile:
        """The data directory's admin key, made on first start so that it outlives restarts."""
        if self.admin_key_path.exists():
            return KeyFile.load(self.admin_key_path)
        key = new_identity("admin", is_admin=True)
        key.save(self.admin_key_path)
        return key

    def _then_deliver_events(self, invoke: Handler) -> Handler:
        """``invoke``, then a wake-up for the push events function: on AWS the table's stream
        wakes it when an outbox item is written; here, any invocation that may have written one
        does, so events are published within a sweep of the push that made them."""

        def invoke_then_deliver(event: dict[str, Any], context: Any) -> Any:
            try:
                return invoke(event, context)
            finally:
                self._outbox_written.set()

        return invoke_then_deliver

    def _deliver_events(self, invoke: Handler) -> None:
        while not self._stopping.is_set():
            if not self._outbox_written.wait(POLL_WAIT_SECONDS):
                continue
            self._outbox_written.clear()
            try:
                invoke(_scheduled_event(), LocalLambdaContext("PushEventsFunction", 60))
            except Exception:
                # The outbox keeps what was not published: try again, as the schedule would.
                if not self._stopping.is_set():
                    traceback.print_exc(file=sys.stderr)
                    self._outbox_written.set()
                    time.sleep(POLL_WAIT_SECONDS)

    def _poll(self, source: SqsEventSource) -> None:
        while not self._stopping.is_set():
            try:
                source.poll_once()
            except Exception:
                # moto going away at shutdown, or a transient failure: report and keep polling.
                if not self._stopping.is_set():
                    traceback.print_exc(file=sys.stderr)
                    time.sleep(POLL_WAIT_SECONDS)


def _scheduled_event() -> dict[str, Any]:
    """What EventBridge's schedule hands a function (the push events function reads none of it)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [],
        "detail": {},
    }


def _invoker(pool: ProcessPoolExecutor, target: str) -> Handler:
    def invoke(event: dict[str, Any], context: Any) -> Any:
        return pool.submit(sandbox.invoke, target, event, context).result()

    return invoke
