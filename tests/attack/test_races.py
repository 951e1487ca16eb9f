"""Concurrent pushes, each thread a Lambda sandbox of its own calling what the API's route calls.

Threads meet at a barrier right after each read the branch heads (or claim the push), so every
race is the worst interleaving, not whatever the scheduler happens to pick. DynamoDB applies the
writes to one item one at a time; moto's in-process backend does not promise that across
threads, so the project's DynamoDB writes are serialised here (each write still evaluates its
condition against the latest state, as on AWS).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from api.test_endpoints import identity
from histories import History
from ingest.test_event_path import (
    invoke,
    make_visible,
    normalised_state,
    receive,
    skip_test_event,
    upload,
)

from muse_cloud.api.statuses import http_status
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import Caller
from muse_cloud.storage.pushes import PushStore
from muse_cloud.storage.refs import RefStore
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import answered, dynamodb, services, stores
from muse_core.mpack import encode_mpack, mpack_key

from .outcomes import assert_refs_whole
from .profile import examples

WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
LOSING_CODES = {"non_fast_forward", "ref_conflict"}


@pytest.fixture
def serialised_writes(stack: Provisioned, monkeypatch: pytest.MonkeyPatch) -> None:
    client: Any = dynamodb()
    real = client._make_api_call
    lock = threading.Lock()

    def one_write_at_a_time(operation: str, params: dict[str, Any]) -> Any:
        if operation not in WRITES:
            return real(operation, params)
        with lock:
            return real(operation, params)

    monkeypatch.setattr(client, "_make_api_call", one_write_at_a_time)


@contextmanager
def meet_after_first(
    monkeypatch: pytest.MonkeyPatch, owner: type, method: str, parties: int
) -> Iterator[None]:
    """Each thread's first call of ``owner.method`` returns only once all threads made theirs."""
    barrier = threading.Barrier(parties, timeout=60)
    seen = threading.local()
    real: Callable[..., Any] = getattr(owner, method)

    def then_wait(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        if not getattr(seen, "done", False):
            seen.done = True
            barrier.wait()
        return found

    monkeypatch.setattr(owner, method, then_wait)
    try:
        yield
    finally:
        monkeypatch.setattr(owner, method, real)


def owner_caller(handle: str) -> Caller:
    found = stores().identities.get(identity(handle).identity_id)
    assert found is not None
    return Caller.of(found)


def _owner(caller: Caller) -> str:
    assert caller.handle is not None
    return caller.handle


def presigned_upload(
    stack: Provisioned, caller: Caller, name: str, repo_id: str, data: bytes, branch: str, head: str
) -> None:
    services().push.presign(
        caller, _owner(caller), name, mpack_key(data), len(data), branch, head, False
    )
    upload(stack, repo_id, data)


def unpack(caller: Caller, name: str, data: bytes, branch: str, head: str) -> dict[str, Any]:
    """The route's answer: the result, or the refusal as ``{status, code}``."""
    try:
        return answered(
            services().push.unpack(
                caller, _owner(caller), name, mpack_key(data), branch, head, False
            )
        )
    except ServiceError as error:
        return {"status": http_status(error), "code": error.code, "item": error.item}


def child_of(history: History, tag: str) -> History:
    rival = copy.deepcopy(history)
    rival.add({f"tracks/{tag}.mid": tag.encode()})
    return rival


def test_many_pushes_to_one_branch_have_one_winner_per_head(
    stack: Provisioned, serialised_writes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    caller = owner_caller("rita")
    repo_id = stores().repos.create("rita", "race", "public").repo_id
    history = History("base")
    history.add({"a.mid": b"a"})
    data = encode_mpack(history.pack())
    presigned_upload(stack, caller, "race", repo_id, data, "main", history.head)
    assert "head" in unpack(caller, "race", data, "main", history.head)

    rounds, rivals = examples(2), 4
    winners: list[str] = []
    for round_number in range(rounds):
        expected = history.head
        contenders = [child_of(history, f"r{round_number}-{n}") for n in range(rivals)]
        packs = [encode_mpack(c.pack(have=[expected])) for c in contenders]
        for contender, pack in zip(contenders, packs, strict=True):
            presigned_upload(stack, caller, "race", repo_id, pack, "main", contender.head)
        with (
            meet_after_first(monkeypatch, RefStore, "heads_of", rivals),
            ThreadPoolExecutor(max_workers=rivals) as pool,
        ):
            answers = list(
                pool.map(
                    lambda pair: unpack(caller, "race", pair[1], "main", pair[0].head),
                    zip(contenders, packs, strict=True),
                )
            )
        won = [(c, a) for c, a in zip(contenders, answers, strict=True) if "head" in a]
        assert len(won) == 1, answers
        history, answer = won[0]
        assert answer["previous_head"] == expected, answer
        lost = [a for a in answers if "head" not in a]
        assert all(a["status"] == 409 and a["code"] in LOSING_CODES for a in lost), lost
        assert stores().refs.heads(repo_id) == {"main": history.head}
        assert_refs_whole(repo_id)
        winners.append(history.head)

    # No lost update: every round's winner is an ancestor of (or is) the final head.
    ancestry = {c.commit_id for c in _first_parents(repo_id, history.head)}
    assert set(winners) <= ancestry
    print(f"\nraces[one branch]: {rounds} races of {rivals} pushes, one winner each")


def _first_parents(repo_id: str, head: str) -> Iterator[Any]:
    commits = stores().commits
    current: str | None = head
    while current:
        stored = commits.get(repo_id, current)
        assert stored is not None
        yield stored.record
        current = stored.record.parent_commit_id


def test_nested_names_created_concurrently_have_one_winner(
    stack: Provisioned, serialised_writes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    caller = owner_caller("nina")
    pairs = examples(5)
    both: list[dict[str, Any]] = []
    for pair in range(pairs):
        name = f"nested{pair}"
        repo_id = stores().repos.create("nina", name, "public").repo_id
        pushes = []
        for branch in ("x", "x/y"):
            history = History(f"{branch}-{pair}")
            history.add({"a.mid": branch.encode()})
            data = encode_mpack(history.pack({branch: history.head}))
            presigned_upload(stack, caller, name, repo_id, data, branch, history.head)
            pushes.append((branch, history.head, data))
        with (
            meet_after_first(monkeypatch, RefStore, "heads", 2),
            ThreadPoolExecutor(max_workers=2) as pool,
        ):
            runs = [
                pool.submit(unpack, caller, name, data, branch, head)
                for branch, head, data in pushes
            ]
            answers = [run.result() for run in runs]
        won = [a for a in answers if "head" in a]
        if len(won) != 1:
            both.append({"pair": pair, "heads": stores().refs.heads(repo_id), "answers": answers})
    print(f"\nraces[nested names]: {len(both)} of {pairs} pairs without exactly one winner")
    assert not both, both


def test_sync_and_event_path_on_one_pack_converge(
    stack: Provisioned, serialised_writes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    caller = owner_caller("sam")
    history = History("both")
    history.add({"a.mid": b"a", "b.mid": b"b"})
    history.add({"a.mid": b"a2"})
    data = encode_mpack(history.pack())
    skip_test_event(stack)

    reference = stores().repos.create("sam", "reference", "public").repo_id
    presigned_upload(stack, caller, "reference", reference, data, "main", history.head)
    receive(stack, 1)  # the reference's own event: ingested synchronously below instead
    assert "head" in unpack(caller, "reference", data, "main", history.head)
    expected = normalised_state(reference)

    runs = examples(3)
    for run in range(runs):
        name = f"both{run}"
        repo_id = stores().repos.create("sam", name, "public").repo_id
        presigned_upload(stack, caller, name, repo_id, data, "main", history.head)
        message = receive(stack, 1)
        with (
            meet_after_first(monkeypatch, PushStore, "claim", 2),
            ThreadPoolExecutor(max_workers=2) as pool,
        ):
            sync = pool.submit(unpack, caller, name, data, "main", history.head)
            event = pool.submit(invoke, stack, message)
            answer, failed = sync.result(), event.result()
        if failed:
            # The event lost the claim and asked to be retried: redeliver it now.
            make_visible(stack, message[0])
            assert invoke(stack, receive(stack, 1)) == set()
        # The route waits 20 s for the other run, then tells the client to poll: both are honest.
        polled = answer.get("code") == "push_in_progress" and answer["status"] == 409
        assert "head" in answer or polled, answer
        assert push_record_state(repo_id, data) == "ok"
        assert normalised_state(repo_id) == expected
    print(f"\nraces[sync vs event]: {runs} races, all converged")


def push_record_state(repo_id: str, data: bytes) -> str:
    record = stores().pushes.get(repo_id, mpack_key(data).removeprefix("sha256:"))
    assert record is not None
    return record.state
