"""At-least-once delivery: duplicates change nothing, and a run that crashed between any two
writes is finished by the redelivered event, ending exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from muse_cloud.domain.pushes import PushRecord
from muse_cloud.storage import pushes
from muse_cloud.storage.commits import CommitStore
from muse_cloud.storage.layout import STATE_TAG, UploadKey
from muse_cloud.storage.pack_index import PackIndex
from muse_cloud.storage.packs import PackStore
from muse_cloud.storage.pushes import PushStore
from muse_cloud.storage.refs import RefStore
from muse_cloud.storage.snapshots import SnapshotStore
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import answered, dynamodb, settings, stores
from muse_core.commits import read_commit
from muse_core.mpack import build_mpack, decode_mpack, encode_mpack
from muse_core.snapshots import read_snapshot

from .test_event_path import (
    acknowledge,
    event_source,
    history_items,
    invoke,
    make_visible,
    normalised_state,
    queue_depth,
    receive,
    skip_test_event,
    table_items,
    upload,
    upload_key_of,
)

# 60 snapshots: a checkpoint at 0 and at 51, so the chains cross a checkpoint boundary.
HISTORY = Workload(commits=60, files=10, changed_per_commit=2, blob_bytes=64)
RESULT_FIELDS = (
    "commits_written",
    "snapshots_written",
    "objects_written",
    "bytes",
    "branch",
    "head",
    "previous_head",
    "updates",
)


@dataclass(frozen=True)
class History:
    root: Path
    ids: list[str]
    data: bytes


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    root = tmp_path_factory.mktemp("history")
    ids = generate_history(root, HISTORY)
    return History(root, ids, encode_mpack(build_mpack(root, ["main"])))


class MainTableWrites:
    """Counts write requests the server's DynamoDB client sends to the main table."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params["body"])
        table = settings().table_name
        if (
            body.get("TableName") == table
            or table in body.get("RequestItems", {})
            or any(
                table == next(iter(action.values())).get("TableName")
                for action in body.get("TransactItems", [])
            )
        ):
            self.count += 1


@pytest.fixture
def main_table_writes(stack: Provisioned) -> Iterator[MainTableWrites]:
    counter = MainTableWrites()
    operations = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
    events = dynamodb().meta.events
    for operation in operations:
        events.register(f"before-call.dynamodb.{operation}", counter)
    yield counter
    for operation in operations:
        events.unregister(f"before-call.dynamodb.{operation}", counter)


def push_record(key: UploadKey) -> PushRecord:
    record = stores().pushes.get(key.repo_id, key.mpack_hex)
    assert record is not None
    return record


def test_the_same_event_twice_ingests_once(
    stack: Provisioned, history: History, main_table_writes: MainTableWrites
) -> None:
    repo_id = stores().repos.create("alice", "songs", "public").repo_id
    skip_test_event(stack)
    key = upload(stack, repo_id, history.data)
    messages = receive(stack, 1)

    assert invoke(stack, messages) == set()
    first = push_record(key)
    assert first.state == "ok" and answered(first)["commits_written"] == HISTORY.commits
    heads = stores().refs.heads(repo_id)
    assert heads == {"main": history.ids[-1]}
    items = history_items(repo_id)

    main_table_writes.count = 0
    # Lambda delivers the same message again, twice (the push record's final state answers) ...
    assert invoke(stack, messages) == set()
    assert invoke(stack, messages) == set()
    # ... and S3 sends a second event for a second PUT of the same bytes.
    acknowledge(stack, messages)
    upload(stack, repo_id, history.data)
    assert event_source(stack).drain() == (1, 0)

    assert main_table_writes.count == 0  # no duplicate write of any kind
    assert answered(push_record(key)) == answered(first)
    assert stores().refs.heads(repo_id) == heads
    assert history_items(repo_id) == items
    assert queue_depth(stack.queue_url) == 0


def test_a_refused_pack_redelivered_stays_refused_once(
    stack: Provisioned, history: History, main_table_writes: MainTableWrites
) -> None:
    repo_id = stores().repos.create("alice", "songs", "public").repo_id
    skip_test_event(stack)
    key = upload(stack, repo_id, history.data[:-1])
    messages = receive(stack, 1)
    assert invoke(stack, messages) == set()
    first = push_record(key)
    assert first.state == "failed" and first.error is not None
    assert answered(first)["error"]["code"] == "malformed_mpack"

    main_table_writes.count = 0
    assert invoke(stack, messages) == set()
    assert main_table_writes.count == 0
    assert answered(push_record(key)) == answered(first)
    assert stores().refs.heads(repo_id) == {}


# --- crashes between writes ----------------------------------------------------------------


class Crash(RuntimeError):
    pass


@dataclass
class Injection:
    """Makes one method raise once, for one repository only (the other is the control)."""

    victim: str
    mode: str  # "before": raise instead of writing; "after": write, then raise; "half"
    fired: int = 0

    def concerns(self, args: tuple[Any, ...]) -> bool:
        return any(
            (isinstance(a, str) and self.victim in a) or getattr(a, "repo_id", None) == self.victim
            for a in args
        )

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def crashing(store: Any, *args: Any, **kwargs: Any) -> Any:
            if self.fired or not self.concerns(args):
                return original(store, *args, **kwargs)
            self.fired += 1
            if self.mode == "after":
                original(store, *args, **kwargs)
            elif self.mode == "half":
                repo_id, items, *rest = args
                items = list(items)
                original(store, repo_id, items[: len(items) // 2], *rest, **kwargs)
            raise Crash(f"injected crash in {original.__qualname__} ({self.mode})")

        return crashing


CRASH_POINTS: list[tuple[type[Any], str, str]] = [
    (PackIndex, "index", "before"),
    (PackIndex, "index", "half"),
    (SnapshotStore, "put_many", "before"),
    (SnapshotStore, "put_many", "half"),
    (CommitStore, "put_many", "before"),
    (CommitStore, "put_many", "half"),
    (PushStore, "note_plan", "after"),
    (RefStore, "compare_and_swap", "before"),
    (RefStore, "compare_and_swap", "after"),
    (PackStore, "mark_ingested", "before"),
    (PackStore, "mark_ingested", "after"),
    (PushStore, "finish", "before"),
]


@pytest.mark.parametrize(
    ("store", "method", "mode"),
    CRASH_POINTS,
    ids=[f"{s.__name__}.{m}-{mode}" for s, m, mode in CRASH_POINTS],
)
def test_redelivery_after_a_crash_converges(
    stack: Provisioned,
    history: History,
    monkeypatch: pytest.MonkeyPatch,
    store: type[Any],
    method: str,
    mode: str,
) -> None:
    repos = stores().repos
    control = repos.create("alice", "control", "public").repo_id
    victim = repos.create("alice", "victim", "public").repo_id
    injection = Injection(victim, mode)
    monkeypatch.setattr(store, method, injection.wrap(getattr(store, method)))
    skip_test_event(stack)
    upload(stack, control, history.data)
    upload(stack, victim, history.data)

    # One batch with both uploads: only the crashed one is reported back for a retry.
    messages = receive(stack, 2)
    by_repo = {upload_key_of(m).repo_id: m for m in messages}
    assert invoke(stack, messages) == {by_repo[victim]["MessageId"]}
    assert injection.fired == 1
    acknowledge(stack, [by_repo[control]])

    victim_key = upload_key_of(by_repo[victim])
    interrupted = push_record(victim_key)
    assert interrupted.state == "pending", "the lease is given back for the retry"
    assert interrupted.error is None

    # The event source redelivers the message once its visibility timeout ends.
    make_visible(stack, by_repo[victim])
    assert event_source(stack).drain() == (1, 0)
    assert queue_depth(stack.queue_url) == 0

    assert_same_outcome(victim, control, victim_key, history)


def assert_same_outcome(victim: str, control: str, key: UploadKey, history: History) -> None:
    head = history.ids[-1]
    assert stores().refs.heads(victim) == stores().refs.heads(control) == {"main": head}
    finished = push_record(key)
    reference = push_record(UploadKey(control, key.mpack_hex))
    assert finished.state == reference.state == "ok", finished
    assert finished.error is None
    assert {k: answered(finished)[k] for k in RESULT_FIELDS} == {
        k: answered(reference)[k] for k in RESULT_FIELDS
    }
    assert answered(finished)["previous_head"] is None
    # Item for item (commits, snapshot deltas and chains, object index, refs) the same state.
    items = table_items()
    assert normalised_state(victim, items) == normalised_state(control, items)
    assert len(history_items(victim, items)) == 1 + 2 * len(history.ids) + 2
    # the ref, commits, snapshots, the pack, whose index holds every object, and the MIDX
    # pointer, which notes the pack as not folded yet
    repo_stores = stores()
    objects = {o["object_id"] for o in decode_mpack(history.data)["objects"]}
    assert len(objects) == HISTORY.files + (len(history.ids) - 1) * HISTORY.changed_per_commit
    assert repo_stores.pack_index.known(victim, objects) == objects
    for index in (0, 50, 51, len(history.ids) - 1):
        commit = repo_stores.commits.get(victim, history.ids[index])
        assert commit is not None
        assert commit.record.to_dict() == read_commit(history.root, history.ids[index]).to_dict()
        sid = commit.record.snapshot_id
        assert (
            repo_stores.snapshots.manifest(victim, sid) == read_snapshot(history.root, sid).manifest
        )
    tags = boto3.client("s3").get_object_tagging(Bucket=settings().bucket_name, Key=key.s3_key)
    assert {"Key": STATE_TAG, "Value": "ingested"} in tags["TagSet"]


def test_a_run_killed_mid_flight_is_finished_after_its_lease_runs_out(
    stack: Provisioned, history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed process gives nothing back: its lease holds retries off until it expires."""
    repos = stores().repos
    control = repos.create("alice", "control", "public").repo_id
    victim = repos.create("alice", "victim", "public").repo_id
    injection = Injection(victim, "before")
    original_cas = RefStore.compare_and_swap
    monkeypatch.setattr(RefStore, "compare_and_swap", injection.wrap(original_cas))
    monkeypatch.setattr(PushStore, "release", lambda *args: None)  # died: no cleanup ran
    skip_test_event(stack)
    upload(stack, control, history.data)
    assert event_source(stack).drain() == (1, 0)
    upload(stack, victim, history.data)

    message = receive(stack, 1)
    key = upload_key_of(message[0])
    assert invoke(stack, message) == {message[0]["MessageId"]}
    assert push_record(key).state == "processing"
    assert stores().refs.heads(victim) == {}

    # Redelivered while the dead run's lease still holds: busy, retried later.
    make_visible(stack, message[0])
    message = receive(stack, 1)
    assert invoke(stack, message) == {message[0]["MessageId"]}
    assert push_record(key).state == "processing"

    # The next redelivery comes after the visibility timeout (5,400 s), well after the lease.
    later = time.time() + 2 * 900
    monkeypatch.setattr(pushes, "time", SimpleNamespace(time=lambda: later))
    make_visible(stack, message[0])
    assert event_source(stack).drain() == (1, 0)

    assert_same_outcome(victim, control, key, history)
