"""moto as a server that lasts: its state saved to a file and restored, requests gated so that a
save sees no half-applied request, and DynamoDB transactions and queries that stay fast on a large
table.

Only the stack's own resources are saved (its tables and bucket, by name): moto's backends are
process-wide, and another stack in the same process must not be touched. Queues are not saved:
a message in flight at a stop or crash is lost, and its push completes when the client asks
again (unpack-mpack, or presign of the same pack)."""

from __future__ import annotations

import base64
import copy
import inspect
import json
import os
import pickle
import threading
import traceback
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

import moto.backends
import moto.core.responses
import moto.core.utils
from moto.backends import get_backend
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.exceptions import (
    ItemSizeTooLarge,
    MockValidationException,
    TransactionCanceledException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.dynamodb.models.utilities import bytesize
from moto.dynamodb.parsing.validators import ActionCountValidator
from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

ACCOUNT = "123456789012"
# moto's own bound on an item's size (DynamoDB's 400 KB, as measured on AWS).
ITEM_BYTES_LIMIT = 405_000
REGION = "us-east-1"
STATE_VERSION = 1

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class RequestGate:
    """Many requests at once, or one save alone: a save waits for running requests to end.
    ``changes`` counts the requests that may have changed what a save writes."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running = 0
        self._saving = False
        self.changes = 0

    @contextmanager
    def request(self, changes: bool = True) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._saving)
            self._running += 1
            self.changes += changes
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()

    @contextmanager
    def alone(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._saving)
            self._saving = True
            self._changed.wait_for(lambda: self._running == 0)
        try:
            yield
        finally:
            with self._changed:
                self._saving = False
                self._changed.notify_all()


# DynamoDB actions that leave the tables as they were.
_DYNAMODB_READS = ("Get", "BatchGet", "Query", "Scan", "Describe", "List")


def changes_saved_state(environ: dict[str, Any]) -> bool:
    """Whether a request may change what a save writes: the stack's tables and bucket. Reads
    leave them, and so do other services' requests (the queue's long polls come every second),
    so a stack that is only read from is not saved again and again. Anything else counts."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target.startswith("DynamoDB_"):
        return not target.partition(".")[2].startswith(_DYNAMODB_READS)
    if target:
        return False
    return environ.get("REQUEST_METHOD") not in ("GET", "HEAD")


def _gated(app: WsgiApp, gate: RequestGate) -> WsgiApp:
    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # The whole answer is built inside the gate: moto answers with bytes already made.
        with gate.request(changes_saved_state(environ)):
            return list(app(environ, start_response))

    return serve


def _bytes_as_bytes(app: WsgiApp) -> WsgiApp:
    """An object PUT sent as urllib sends it (the Muse client's presigned PUTs) says
    ``application/x-www-form-urlencoded``: S3 stores such a body as it is, but moto's server
    parses it as a form and waits for one that never ends. Here it is named as bytes."""

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "PUT" and environ.get("CONTENT_TYPE", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            environ["CONTENT_TYPE"] = "application/octet-stream"
        return app(environ, start_response)

    return serve


class GatedMotoServer:
    """moto's server on ``host:port`` in a thread, every request passing through ``gate``."""

    def __init__(self, host: str, port: int, gate: RequestGate) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server: BaseWSGIServer = make_server(
            host, port, _gated(_bytes_as_bytes(app), gate), True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()


@dataclass(frozen=True)
class SavedResources:
    tables: tuple[str, ...]
    bucket: str


def save_state(path: Path, resources: SavedResources, prefix: str, gate: RequestGate) -> int:
    """Write the resources' moto state to ``path`` atomically; returns the bytes written."""
    with gate.alone():
        data = pickle.dumps(_state(resources, prefix), protocol=pickle.HIGHEST_PROTOCOL)
    _write(path, data)
    return len(data)


def save_state_aside(path: Path, resources: SavedResources, prefix: str, gate: RequestGate) -> int:
    """``save_state`` by a forked child, returning its pid once forked: the child holds the
    state as it was at the fork (copy-on-write) and pickles and writes it while requests go on.
    Pickling in the stack's own process kept every request waiting for seconds on a stack
    holding a few seeded repositories. Where there is no fork, the state is saved in place
    (and the returned pid is 0)."""
    if not hasattr(os, "fork"):
        save_state(path, resources, prefix, gate)
        return 0
    with gate.alone():
        state = _state(resources, prefix)
        pid = os.fork()
        if pid == 0:
            # Nothing of the parent's (its threads, their locks, its atexit handlers) runs here.
            # The lowest priority: pickling a few seeded repositories takes seconds of CPU that
            # requests served meanwhile (a clone's client and the stack's workers) need more.
            os.nice(19)
            try:
                _write(path, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
            except BaseException:
                traceback.print_exc()
                os._exit(1)
            os._exit(0)
    return pid


def _state(resources: SavedResources, prefix: str) -> dict[str, Any]:
    dynamodb = get_backend("dynamodb")[ACCOUNT][REGION]
    s3 = get_backend("s3")[ACCOUNT]["aws"]
    return {
        "version": STATE_VERSION,
        "prefix": prefix,
        "tables": {name: dynamodb.tables[name] for name in resources.tables},
        "bucket": s3.buckets[resources.bucket],
    }


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)


def saved_prefix(path: Path) -> str | None:
    """The resource name prefix of a saved state, or None when there is none to restore."""
    if not path.is_file():
        return None
    state = _load(path)
    prefix = state.get("prefix")
    return prefix if isinstance(prefix, str) else None


def restore_state(path: Path, resources: SavedResources) -> None:
    """Put the saved tables and bucket in place of the freshly provisioned, empty ones."""
    state = _load(path)
    dynamodb = get_backend("dynamodb")[ACCOUNT][REGION]
    s3 = get_backend("s3")[ACCOUNT]["aws"]
    for name in resources.tables:
        dynamodb.tables[name] = state["tables"][name]
    s3.buckets[resources.bucket] = state["bucket"]


def forget_resources(resources: SavedResources, *queues: str) -> None:
    """Drop a stopped stack's resources from moto's process-wide backends, freeing their memory
    and leaving their names free for a stack that restores them in this process."""
    dynamodb = get_backend("dynamodb")[ACCOUNT][REGION]
    for name in resources.tables:
        dynamodb.tables.pop(name, None)
    get_backend("s3")[ACCOUNT]["aws"].buckets.pop(resources.bucket, None)
    sqs = get_backend("sqs")[ACCOUNT][REGION]
    for name in queues:
        sqs.queues.pop(name, None)


def _load(path: Path) -> dict[str, Any]:
    # The file is the stack's own, written by save_state into its private data directory.
    with path.open("rb") as source:
        state = pickle.load(source)
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise ValueError(f"{path} is not a saved state this version can read")
    return state


# --- DynamoDB transactions ---------------------------------------------------------------------

_ItemBackup = tuple[Table, DynamoType, DynamoType | None, Any]


def _backups(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[_ItemBackup]:
    """A copy of each item the transaction names, as it is before the transaction."""
    backups: list[_ItemBackup] = []
    for action in transact_items:
        try:
            op_type, op = next(iter(action.items()))
            table = backend.get_table(op["TableName"])
            key = op["Item"] if op_type == "Put" else op["Key"]
            hash_value = DynamoType(key[table.hash_key_attr])
            range_attr = table.range_key_attr
            range_value = DynamoType(key[range_attr]) if range_attr is not None else None
        except (KeyError, StopIteration, AttributeError, TypeError, JsonRESTError):
            # moto refuses a malformed action before it writes anything for it.
            continue
        current = table.get_item(hash_value, range_value)
        backups.append((table, hash_value, range_value, copy.deepcopy(current)))
    return backups


def _roll_back(backups: list[_ItemBackup]) -> None:
    for table, hash_value, range_value, item in reversed(backups):
        if item is None:
            table.delete_item(hash_value, range_value)
        elif range_value is not None:
            table.items[hash_value][range_value] = item
        else:
            table.items[hash_value] = item


class _TablesNotCopied(types.SimpleNamespace):
    """moto's ``copy`` module as its DynamoDB models see it, except that a whole table is not
    deep-copied (moto does that once per action of every transaction, so a transaction's cost
    grew with the table: 100 actions on a long-running stack took minutes)."""

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


_original_transact = DynamoDBBackend.transact_write_items


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    backups = _backups(self, transact_items)
    try:
        _original_transact(self, transact_items)
    except (TransactionCanceledException, MockValidationException):
        _roll_back(backups)
        raise


# --- DynamoDB queries -----------------------------------------------------------------------------

_original_query = Table.query
_original_all_items = Table.all_items
_QUERY_SIGNATURE = inspect.signature(_original_query)
# The table and partition a base-table Query of this thread is reading while it runs, and the
# sort-key prefix it asks for (None: no prefix).
_querying: ContextVar[tuple[Table, DynamoType, str | None] | None] = ContextVar(
    "querying", default=None
)


def _query(self: Table, *args: Any, **kwargs: Any) -> Any:
    arguments = _QUERY_SIGNATURE.bind(self, *args, **kwargs).arguments
    hash_key = arguments.get("hash_key")
    if arguments.get("index_name") or hash_key is None:
        return _original_query(self, *args, **kwargs)
    objects = arguments.get("range_objs") or []
    prefix = None
    if arguments.get("range_comparison") == "BEGINS_WITH" and len(objects) == 1:
        prefix = objects[0].value if isinstance(objects[0].value, str) else None
    token = _querying.set((self, hash_key, prefix))
    try:
        return _original_query(self, *args, **kwargs)
    finally:
        _querying.reset(token)


def _all_items(self: Table) -> list[Item]:
    """Inside a base-table Query, the items of its partition only, and of those only the ones
    whose sort key has the prefix asked for: moto's Query keeps the whole table's items and
    sorts what it keeps by comparisons written in Python, so every Query cost the whole table
    (300 ms for a refs call on a stack holding a few seeded repositories), and then the whole
    partition (a repository's partition gains a few items a push: after 1,000 pushes, each
    Query of its refs took 20 ms)."""
    scope = _querying.get()
    if scope is None or scope[0] is not self:
        return _original_all_items(self)
    _, hash_key, prefix = scope
    partition = self.items.get(hash_key)
    if not partition:
        return []
    if not self.range_key_attr:
        return [cast(Item, partition)]
    if prefix is None:
        return list(partition.values())
    return [item for key, item in partition.items() if str(key.value).startswith(prefix)]


# --- what moto works out again for every request ------------------------------------------------

_original_moto_modules = moto.backends.list_of_moto_modules
_original_method_names = moto.core.utils.method_names_from_class


@cache
def _moto_modules() -> tuple[str, ...]:
    """moto's service packages, listed once: its server lists its own directory and checks
    each of some 150 entries twice for every request, to find which service it is for (a
    quarter of the time of answering a GetItem over HTTP)."""
    return tuple(_original_moto_modules())


@cache
def _method_names(handler: type) -> list[str]:
    """The actions a response class answers, found once per class: moto walks the class's
    members again for every request."""
    return _original_method_names(handler)


# --- DynamoDB answers -----------------------------------------------------------------------------

# Actions whose results moto builds in DynamoDB's wire format already (items as AttributeValue
# maps, numbers as strings), binary values aside.
_ITEM_ACTIONS = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
_original_serialized = DynamoHandler.serialized
_original_parse_parameters = DynamoHandler.parse_parameters


def _blob(value: object) -> str:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not part of an item")


def _decoded_blob(value: dict[str, Any]) -> dict[str, Any]:
    """A request's JSON object, a binary AttributeValue (``B``, ``BS``) decoded, as moto's
    parser leaves them. A map naming an attribute ``B`` holds an AttributeValue, never a string,
    so only AttributeValues match. The JSON decoder calls it on each object as it reads it."""
    if len(value) == 1:
        kind, inner = next(iter(value.items()))
        if kind == "B" and isinstance(inner, str):
            return {"B": base64.b64decode(inner)}
        if kind == "BS" and isinstance(inner, list) and all(isinstance(v, str) for v in inner):
            return {"BS": [base64.b64decode(v) for v in inner]}
    return value


def _parse_parameters(self: DynamoHandler, request: Any) -> None:
    """An item action's request read as the JSON it is. moto's parser walks the operation's
    input shape for every attribute of every item (a seventh of the time of a seed push's
    writes) to give the same values."""
    if self._get_action() in _ITEM_ACTIONS:
        self.params = json.loads(request.data or b"{}", object_hook=_decoded_blob)
    else:
        _original_parse_parameters(self, request)


def _serialized(self: DynamoHandler, action_result: Any) -> Any:
    """An item action's result as JSON at once. moto's serializer walks the operation's output
    shape for every attribute of every item, which was half the time of a 1,031-commit fetch
    pack; what it writes for these results is the same JSON document."""
    result = action_result.result
    if isinstance(result, dict) and self._get_action() in _ITEM_ACTIONS:
        try:
            body = json.dumps(result, default=_blob)
        except TypeError:
            return _original_serialized(self, action_result)
        headers = {**self.response_headers, "Content-Type": "application/x-amz-json-1.0"}
        return 200, headers, body
    return _original_serialized(self, action_result)


def _batch_write_request(request: dict[str, Any]) -> dict[str, Any]:
    """What moto's BatchWriteItem compares to find a request made twice: the request itself.
    moto compares their JSON dumps, encoding every binary value of every item again (a tenth of
    the time of writing a seed push's items); two requests are equal exactly when their dumps
    are, but for the order of their attributes, which DynamoDB ignores too."""
    return request


# --- DynamoDB items -------------------------------------------------------------------------------

_original_item_init = Item.__init__


def _item_init(
    self: Item, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict[str, Any]
) -> None:
    """moto's Item, its size checked once. moto adds the attributes one by one and measures
    every attribute again at each addition (a fifth of the time of writing a snapshot item);
    the last check, on the whole item, is the one that can fail."""
    converted = {key: DynamoType(value) for key, value in attrs.items()}
    if sum(bytesize(key) + value.size() for key, value in converted.items()) > ITEM_BYTES_LIMIT:
        raise ItemSizeTooLarge
    self.hash_key = hash_key
    self.range_key = range_key
    self.attrs = LimitedSizeDict()
    dict.update(self.attrs, converted)


# --- DynamoDB update expressions ------------------------------------------------------------------

_original_count_actions = ActionCountValidator.traverse


def _count_actions(self: ActionCountValidator, expression: Any) -> Any:
    """moto's check that an update expression has at most one SET, REMOVE and ADD clause, made
    on the whole expression (the root ``UpdateExpression`` it is given, whose clauses include
    every nested expression's). moto walks the whole tree for it, one of the ten walks of every
    update: half the time of a ten-action UpdateItem, such as a push's claim (10 ms)."""
    self.verify_action_counts(expression)
    return expression


def keep_moto_fast() -> None:
    """Roll transactions back item by item instead of table by table, have a Query read its
    partition, not the table, read and answer item actions without walking their shapes, and
    check an update's clauses once (idempotent)."""
    import moto.dynamodb.models as models
    import moto.dynamodb.responses as responses

    if not isinstance(getattr(models, "copy"), _TablesNotCopied):  # noqa: B009
        setattr(models, "copy", _TablesNotCopied())  # noqa: B010
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    Table.query = _query  # type: ignore[method-assign]
    Table.all_items = _all_items  # type: ignore[method-assign]
    DynamoHandler.serialized = _serialized  # type: ignore[method-assign, assignment]
    DynamoHandler.parse_parameters = _parse_parameters  # type: ignore[method-assign, assignment]
    Item.__init__ = _item_init  # type: ignore[method-assign]
    ActionCountValidator.traverse = _count_actions
    setattr(moto.backends, "list_of_moto_modules", _moto_modules)  # noqa: B010
    setattr(moto.core.responses, "method_names_from_class", _method_names)  # noqa: B010
    # Its only use there: the duplicate check of BatchWriteItem.
    setattr(responses, "dynamo_json_dump", _batch_write_request)  # noqa: B010
