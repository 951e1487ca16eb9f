"""``x`` and ``x/y`` can never both be branches: not one after the other, not in one pack, and
not when two pushes create them at once (the conditional write itself refuses the second)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from histories import History, linear_history

from muse_cloud.domain.pushes import PushRecord, PushRequest
from muse_cloud.storage import keys
from muse_cloud.storage.layout import UploadKey
from muse_cloud.storage.refs import RefStore, RefUpdate
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import answered, services, stores
from muse_core.mpack import encode_mpack

from .client import call
from .test_clone import ApiClient, clone
from .test_endpoints import create_repo, expect_error, identity, push, upload

RACE_ROUNDS = 20


@pytest.fixture
def history() -> History:
    return linear_history(2)


Race = Callable[[list[Callable[[], PushRecord]]], list[PushRecord]]


@pytest.fixture
def race(monkeypatch: pytest.MonkeyPatch) -> Race:
    """Runs ingestions at once, each reading the heads before any of them writes a ref.

    Each racer's first heads read (its plan) waits for the others', so every plan passes the
    nested-name check on the heads it read; only the conditional write can refuse one.
    DynamoDB applies each request atomically, which moto's in-process backend does not promise
    across threads, so each swap request is serialised here.
    """
    racer = threading.local()
    real_heads = RefStore.heads
    real_swap = RefStore.compare_and_swap
    swap_lock = threading.Lock()

    def heads_after_all_read(store: RefStore, repo_id: str) -> dict[str, str]:
        found = real_heads(store, repo_id)
        barrier = getattr(racer, "barrier", None)
        if barrier is not None:
            racer.barrier = None
            barrier.wait()
        return found

    def serialised_swap(store: RefStore, *args: Any) -> bool:
        with swap_lock:
            return real_swap(store, *args)

    monkeypatch.setattr(RefStore, "heads", heads_after_all_read)
    monkeypatch.setattr(RefStore, "compare_and_swap", serialised_swap)

    def run(jobs: list[Callable[[], PushRecord]]) -> list[PushRecord]:
        barrier = threading.Barrier(len(jobs), timeout=30)

        def racing(job: Callable[[], PushRecord]) -> PushRecord:
            racer.barrier = barrier
            return job()

        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            return list(pool.map(racing, jobs))

    return run


def ingestion(key: UploadKey, branch: str, head: str) -> Callable[[], PushRecord]:
    return lambda: services().ingest.ingest(key, PushRequest(branch, head))


def test_concurrent_pushes_of_x_and_x_slash_y_have_exactly_one_winner(
    stack: Provisioned, race: Race, tmp_path: Path
) -> None:
    # Every moto query reads the whole table: the smallest history keeps 20 rounds quick.
    history = linear_history(1, files=1)
    repo_of: dict[str, str] = {}
    cloned_for: dict[str, str] = {}  # winning branch -> the first repository it won
    for round_ in range(RACE_ROUNDS):
        name = f"race{round_}"
        repo_id = repo_of[name] = stores().repos.create("olivia", name, "public").repo_id
        names = ["x", "x/y"] if round_ % 2 == 0 else ["x/y", "x"]
        jobs = []
        for branch in names:
            data = encode_mpack(history.pack({branch: history.head}))
            hex_key = upload(stack, repo_id, data).removeprefix("sha256:")
            jobs.append(ingestion(UploadKey(repo_id, hex_key), branch, history.head))

        records = race(jobs)

        assert sorted(r.state for r in records) == ["failed", "ok"], [r.error for r in records]
        winner = next(r for r in records if r.state == "ok")
        loser = next(r for r in records if r.state == "failed")
        assert (
            loser.error is not None and answered(loser)["error"]["code"] == "branch_name_conflict"
        )
        assert (
            answered(loser)["error"]["http_status"] == 409
            and answered(loser)["error"]["item"] == loser.branch
        )
        assert stores().refs.heads(repo_id) == {str(winner.branch): history.head}
        cloned_for.setdefault(str(winner.branch), name)
    # Each outcome's repository reads and clones (cloning all of them costs moto's scans).
    for branch, name in cloned_for.items():
        assert call("GET", f"/olivia/{name}/refs").json()["branch_heads"] == {branch: history.head}
        copy = tmp_path / name
        assert clone(ApiClient(stack, repo_of[name]), copy, f"olivia/{name}") == {
            branch: history.head
        }


@pytest.mark.parametrize(
    ("first", "second"),
    [("x", "x/y"), ("x/y", "x"), ("x", "x/y/z"), ("x/y/z", "x/y"), ("x/y/z", "x")],
)
def test_a_branch_nested_with_an_existing_one_is_refused(
    stack: Provisioned, history: History, first: str, second: str
) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    c0, c1 = history.order
    assert push(stack, owner, repo, encode_mpack(history.pack({first: c0})), first).status == 200

    refused = push(stack, owner, repo, encode_mpack(history.pack({second: c1})), second)

    assert expect_error(refused, 409, "branch_name_conflict")["item"] == second
    assert call("GET", "/olivia/songs/refs").json()["branch_heads"] == {first: c0}
    # A sibling under the same directories is a branch like any other.
    sibling = "x/q" if "/" in first else "q"
    moved = push(stack, owner, repo, encode_mpack(history.pack({sibling: c1})), sibling)
    assert moved.status == 200, moved.body
    assert call("GET", "/olivia/songs/refs").json()["branch_heads"] == {first: c0, sibling: c1}


@pytest.mark.parametrize(("first", "second"), [("x", "x/y"), ("x/y", "x"), ("x/y/z", "x/y")])
def test_the_conditional_write_alone_refuses_a_nested_name(
    stack: Provisioned, history: History, first: str, second: str
) -> None:
    """Without any read before it, as when the other push wrote after this one read."""
    repo_id = create_repo(identity("olivia"), "songs")["repoId"]
    refs = stores().refs
    assert refs.compare_and_swap(repo_id, [RefUpdate(first, None, history.head)], "p1")

    assert not refs.compare_and_swap(repo_id, [RefUpdate(second, None, history.head)], "p2")
    assert refs.heads(repo_id) == {first: history.head}
    assert refs.get(repo_id, second) is None


def test_directories_count_their_branches_and_are_no_branches(
    stack: Provisioned, history: History
) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    c0, c1 = history.order
    data = encode_mpack(history.pack({"a/b/c": c1, "a/d": c0}))
    assert push(stack, owner, repo, data, branch=None).status == 200
    moved = push(stack, owner, repo, encode_mpack(history.pack({"a/d": c1})), "a/d")
    assert moved.status == 200, moved.body

    stored = {i["sk"]: i for i in stores().table.query(keys.repo_partition(repo["repoId"]), "REF#")}
    assert {sk: stored[sk].get("below") for sk in stored} == {
        "REF#a": 2,
        "REF#a/b": 1,
        "REF#a/b/c": None,
        "REF#a/d": None,
    }
    assert "commit_id" not in stored["REF#a"] and "commit_id" not in stored["REF#a/b"]
    # A move keeps the mark that the ref is in its directories' counts.
    assert stored["REF#a/d"]["counted"] is True and stored["REF#a/d"]["commit_id"] == c1
    assert call("GET", "/olivia/songs/refs").json()["branch_heads"] == {"a/b/c": c1, "a/d": c1}
    assert call("GET", "/olivia/songs/log", query={"branch": "a"}).status == 404
    for directory in ("a", "a/b"):
        refused = push(stack, owner, repo, encode_mpack(history.pack({directory: c0})), directory)
        expect_error(refused, 409, "branch_name_conflict")


@pytest.mark.parametrize(("old", "new"), [("x/y", "x"), ("x", "x/y")])
def test_refs_written_before_directory_counts_still_refuse_nested_names(
    stack: Provisioned, history: History, old: str, new: str
) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    assert push(stack, owner, repo, encode_mpack(history.pack({"main": history.head}))).status
    # A ref as the code before directory counts wrote it: no count on its directories.
    stores().table.put(
        {**keys.ref(repo["repoId"], old), "commit_id": history.head, "push_id": "old"}
    )

    refused = push(stack, owner, repo, encode_mpack(history.pack({new: history.head})), new)

    expect_error(refused, 409, "branch_name_conflict")
    heads = call("GET", "/olivia/songs/refs").json()["branch_heads"]
    assert heads == {"main": history.head, old: history.head}


def test_a_push_whose_refs_exceed_one_transaction_is_refused_before_writing(
    stack: Provisioned, history: History
) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    # 60 new branches in 60 directories of their own: 120 actions.
    heads = {f"d{i:02d}/b": history.head for i in range(60)}
    data = encode_mpack(history.pack(heads))

    refused = push(stack, owner, repo, data, branch=None)

    body = expect_error(refused, 413, "limit_exceeded")
    assert "120" in body["message"] and body["item"] in heads
    assert call("GET", "/olivia/songs/refs").json()["branch_heads"] == {}
    assert not stores().commits.generations(repo["repoId"], history.order)


@pytest.mark.parametrize(("segments", "status"), [(97, 200), (98, 413)])
def test_a_deep_branch_name_fits_one_transaction_or_is_refused(
    stack: Provisioned, history: History, segments: int, status: int
) -> None:
    """A new branch takes one action, and one more per directory of its name, beside the
    three of every ref change (the rules and the default branch unchanged, the outbox item)."""
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    branch = "/".join(["s"] * segments)

    answer = push(stack, owner, repo, encode_mpack(history.pack({branch: history.head})), branch)

    assert answer.status == status, answer.body
    expected = {branch: history.head} if status == 200 else {}
    assert call("GET", "/olivia/songs/refs").json()["branch_heads"] == expected
