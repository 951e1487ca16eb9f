"""Pushes racing for one branch, and transient AWS failures that must be retried, not recorded."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from attack.test_races import serialised_writes
from botocore.exceptions import ClientError

from muse_cloud.domain.pushes import PushRecord
from muse_cloud.storage import keys
from muse_cloud.storage.layout import UploadKey
from muse_cloud.storage.pack_index import PackIndex
from muse_cloud.storage.refs import RefStore
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import answered, services, stores
from muse_core.mpack import build_mpack, decode_mpack, encode_mpack

from .test_event_path import (
    event_source,
    history_items,
    invoke,
    make_visible,
    queue_depth,
    receive,
    skip_test_event,
    upload,
    upload_key_of,
)

__all__ = ["serialised_writes"]  # a fixture, used by name

BASE = Workload(commits=4, files=8, changed_per_commit=2, blob_bytes=64)


@dataclass(frozen=True)
class Rivals:
    base_head: str
    base_data: bytes
    heads: tuple[str, str]  # the two divergent heads, both children of the base head
    packs: tuple[bytes, bytes]  # each built against the base head


@pytest.fixture(scope="module")
def rivals(tmp_path_factory: pytest.TempPathFactory) -> Rivals:
    base = tmp_path_factory.mktemp("base")
    base_head = generate_history(base, BASE)[-1]
    heads: list[str] = []
    packs: list[bytes] = []
    for changed in (2, 3):
        root = tmp_path_factory.mktemp(f"rival{changed}") / "repo"
        shutil.copytree(base, root)
        more = Workload(commits=2, files=8, changed_per_commit=changed, blob_bytes=64)
        heads.append(generate_history(root, more, start=BASE.commits)[-1])
        packs.append(encode_mpack(build_mpack(root, ["main"], have=[base_head])))
    assert heads[0] != heads[1]
    return Rivals(
        base_head,
        encode_mpack(build_mpack(base, ["main"])),
        (heads[0], heads[1]),
        (packs[0], packs[1]),
    )


def push_base(stack: Provisioned, rivals: Rivals) -> str:
    repo_id = stores().repos.create("alice", "songs", "public").repo_id
    skip_test_event(stack)
    upload(stack, repo_id, rivals.base_data)
    assert event_source(stack).drain() == (1, 0)
    assert stores().refs.heads(repo_id) == {"main": rivals.base_head}
    return repo_id


def test_two_pushes_racing_for_a_branch_have_exactly_one_winner(
    stack: Provisioned, rivals: Rivals, monkeypatch: pytest.MonkeyPatch, serialised_writes: None
) -> None:
    repo_id = push_base(stack, rivals)
    uploads = [upload(stack, repo_id, data) for data in rivals.packs]

    # Both runs read the branch head before either moves it: each checks a fast-forward of
    # the base head, and each passes.
    barrier = threading.Barrier(2, timeout=30)
    planned = threading.local()
    real_heads = RefStore.heads_of

    def heads_after_both_read(store: RefStore, repo: str, branches: Any) -> dict[str, str]:
        found = real_heads(store, repo, branches)
        if not getattr(planned, "done", False):
            planned.done = True
            barrier.wait()
        return found

    # DynamoDB serialises conditional writes to one item; moto's in-process backend does not
    # promise that across threads (a transaction copies the table while another thread writes
    # to it), so the swap itself is serialised here, and every write (``serialised_writes``).
    swap_lock = threading.Lock()
    real_swap = RefStore.compare_and_swap

    def serialised_swap(store: RefStore, *args: Any) -> bool:
        with swap_lock:
            return real_swap(store, *args)

    monkeypatch.setattr(RefStore, "heads_of", heads_after_both_read)
    monkeypatch.setattr(RefStore, "compare_and_swap", serialised_swap)

    with ThreadPoolExecutor(max_workers=2) as pool:
        records = list(pool.map(lambda key: services().ingest.ingest(key), uploads))

    states = sorted(r.state for r in records)
    assert states == ["failed", "ok"], [(r.state, r.error) for r in records]
    winner = next(r for r in records if r.state == "ok")
    loser = next(r for r in records if r.state == "failed")
    assert loser.error is not None and answered(loser)["error"]["code"] == "ref_conflict", (
        loser.error
    )
    assert (
        answered(loser)["error"]["http_status"] == 409
        and answered(loser)["error"]["item"] == "main"
    )
    assert answered(winner)["previous_head"] == rivals.base_head
    monkeypatch.setattr(RefStore, "heads_of", real_heads)
    monkeypatch.setattr(RefStore, "compare_and_swap", real_swap)
    assert stores().refs.heads(repo_id) == {"main": answered(winner)["head"]}
    assert answered(winner)["head"] in rivals.heads
    # The recorded outcomes are final: asking again answers the same.
    for key, record in zip(uploads, records, strict=True):
        again = services().ingest.ingest(key)
        assert answered(again) == answered(record)


def test_two_pushes_in_one_batch_have_exactly_one_winner(
    stack: Provisioned, rivals: Rivals
) -> None:
    repo_id = push_base(stack, rivals)
    for data in rivals.packs:
        upload(stack, repo_id, data)

    messages = receive(stack, 2)
    assert invoke(stack, messages) == set()  # a refusal is an outcome, not a failure

    records = [push_record(upload_key_of(m)) for m in messages]
    assert [r.state for r in records] == ["ok", "failed"]
    winner, loser = records
    assert loser.error is not None and answered(loser)["error"]["code"] == "non_fast_forward"
    assert stores().refs.heads(repo_id) == {"main": answered(winner)["head"]}


def push_record(key: UploadKey) -> PushRecord:
    record = stores().pushes.get(key.repo_id, key.mpack_hex)
    assert record is not None
    return record


def throttled(*args: Any, **kwargs: Any) -> int:
    raise ClientError(
        {
            "Error": {
                "Code": "ProvisionedThroughputExceededException",
                "Message": "The level of configured provisioned throughput for the table was "
                "exceeded.",
            }
        },
        "BatchWriteItem",
    )


def test_a_transient_failure_is_retried_not_recorded(
    stack: Provisioned, rivals: Rivals, monkeypatch: pytest.MonkeyPatch
) -> None:
    repos = stores().repos
    healthy = repos.create("alice", "healthy", "public").repo_id
    victim = repos.create("alice", "victim", "public").repo_id
    skip_test_event(stack)
    upload(stack, healthy, rivals.base_data)
    upload(stack, victim, rivals.base_data)

    real_put_many = PackIndex.index
    calls: list[str] = []

    def throttled_for_victim(index: PackIndex, repo_id: str, *args: Any) -> None:
        calls.append(repo_id)
        if repo_id == victim:
            throttled()
        real_put_many(index, repo_id, *args)

    monkeypatch.setattr(PackIndex, "index", throttled_for_victim)
    messages = receive(stack, 2)
    by_repo = {upload_key_of(m).repo_id: m for m in messages}

    # Only the throttled message goes back to the queue; the other one succeeded.
    assert invoke(stack, messages) == {by_repo[victim]["MessageId"]}
    assert sorted(calls) == sorted([healthy, victim])

    key = upload_key_of(by_repo[victim])
    record = push_record(key)
    assert record.state == "pending" and record.error is None and record.result is None
    raw = stores().table.get(keys.push(victim, key.mpack_hex))
    assert raw is not None and "lease_until" not in raw  # released: a retry claims it at once
    assert stores().refs.heads(victim) == {}
    assert not any(pk.startswith(("COMMIT#", "SNAP#")) for pk, _ in history_items(victim))

    # The retry (the message, visible again) succeeds.
    monkeypatch.setattr(PackIndex, "index", real_put_many)
    make_visible(stack, by_repo[victim])
    assert event_source(stack).drain() == (1, 0)
    assert push_record(key).state == "ok"
    assert stores().refs.heads(victim) == stores().refs.heads(healthy) == {"main": rivals.base_head}
    held = {o["object_id"] for o in decode_mpack(rivals.base_data)["objects"]}
    assert held and stores().pack_index.known(victim, held) == held
    assert stores().pack_index.known(healthy, held) == held


def test_a_failure_that_persists_ends_in_the_dead_letter_queue_still_retriable(
    stack: Provisioned, rivals: Rivals, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo_id = stores().repos.create("alice", "songs", "public").repo_id
    skip_test_event(stack)
    key = upload(stack, repo_id, rivals.base_data)
    real_put_many = PackIndex.index
    monkeypatch.setattr(PackIndex, "index", throttled)

    for _ in range(stack.max_receive_count):
        message = receive(stack, 1)
        assert invoke(stack, message) == {message[0]["MessageId"]}
        assert push_record(key).state == "pending"
        make_visible(stack, message[0])

    # One receive too many: SQS moves the message to the dead-letter queue.
    assert event_source(stack).drain() == (0, 0)
    assert queue_depth(stack.queue_url) == 0
    assert queue_depth(stack.dead_letter_queue_url) == 1
    assert stores().refs.heads(repo_id) == {}

    # Nothing was recorded as final, so the same upload can still be ingested later.
    monkeypatch.setattr(PackIndex, "index", real_put_many)
    assert services().ingest.ingest(key).state == "ok"
    assert stores().refs.heads(repo_id) == {"main": rivals.base_head}
