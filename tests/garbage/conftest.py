"""Garbage collection on in-memory stores: pushes that lost their race, were overwritten or
were refused, made through the one IngestService, then one pass and what is left."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import pytest
from histories import History, linear_history
from services.conftest import OLIVIA, upload
from services.conftest import repo as repo
from services.conftest import services as services

from muse_cloud.composition import Services
from muse_cloud.domain.protection import DEFAULT_BRANCH_PATTERN, BranchRule
from muse_cloud.domain.pushes import PushRecord, PushRequest
from muse_cloud.domain.repos import Repo
from muse_cloud.services.gc import GarbageCollector
from muse_cloud.storage.layout import UploadKey
from muse_cloud.storage.memory import MemoryBucket, MemoryTable
from muse_cloud.storage.refs import RefStore


def collector(services: Services) -> GarbageCollector:
    """The pass with no grace at all: everything is old enough, no push is recent."""
    return replace(services.gc, grace_seconds=0, longest_run_seconds=0)


def push(services: Services, repo: Repo, pack: dict[str, Any], force: bool = False) -> PushRecord:
    """The pack ingested for its first branch; forced pushes first allowed on the default
    branch, which is protected against them until a rule allows them."""
    (branch, head), *_ = pack["branch_heads"].items()
    if force:
        allowed = BranchRule(DEFAULT_BRANCH_PATTERN, force_push=True)
        services.branches.protect(OLIVIA, repo.repo_id, [allowed], None)
    key = upload(services, repo, pack)
    return services.ingest.ingest(key, PushRequest(branch, head, force))


@contextmanager
def rival_moves_first(
    services: Services, repo: Repo, pack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Right before the next ref move of another push, ``pack`` is pushed and moves the refs
    first (a race the other push then loses, with everything it wrote already written)."""
    real = RefStore.compare_and_swap
    rival = upload(services, repo, pack)
    raced: list[str] = []

    def rival_first(store: RefStore, repo_id: str, updates: Any, push_id: str, *rest: Any) -> bool:
        if not raced and push_id != rival.mpack_hex:
            raced.append(push_id)
            assert services.ingest.ingest(rival).state == "ok"
        return real(store, repo_id, updates, push_id, *rest)

    with monkeypatch.context() as patched:
        patched.setattr(RefStore, "compare_and_swap", rival_first)
        yield


def lost_push(
    services: Services, repo: Repo, history: History, tag: str, monkeypatch: pytest.MonkeyPatch
) -> PushRecord:
    """A push of a commit on main's head that wrote everything and lost its ref move to a
    rival pushing another commit on that head."""
    base = services.stores.refs.heads(repo.repo_id)["main"]
    loser = history.add({f"tracks/{tag}.mid": f"lost {tag}\n".encode()}, parent=base)
    winner = history.add({f"tracks/{tag}.mid": f"won {tag}\n".encode()}, parent=base)
    with rival_moves_first(services, repo, history.pack({"main": winner}, [base]), monkeypatch):
        record = push(services, repo, history.pack({"main": loser}, [base]))
    assert record.error is not None and record.error.code == "ref_conflict", record.error
    return record


class Pushed(NamedTuple):
    history: History
    base: PushRecord
    lost: PushRecord


def with_a_lost_push(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch, commits: int = 3
) -> Pushed:
    """A history of ``commits`` on main, then a push on it that lost its race."""
    history = linear_history(commits=commits)
    base = push(services, repo, history.pack())
    assert base.state == "ok"
    return Pushed(history, base, lost_push(services, repo, history, "a", monkeypatch))


def table_of(services: Services) -> MemoryTable:
    table = services.stores.table
    assert isinstance(table, MemoryTable)
    return table


def bucket_of(services: Services) -> MemoryBucket:
    bucket = services.stores.bucket
    assert isinstance(bucket, MemoryBucket)
    return bucket


def upload_key(repo: Repo, record: PushRecord) -> str:
    return UploadKey(repo.repo_id, record.push_id).s3_key


def pass_time(services: Services, seconds: float) -> None:
    """What waiting does to the stores: every push record and every file written so much
    earlier (a pass then finds them past a grace period shorter than ``seconds``)."""
    for (pk, _), item in table_of(services).items.items():
        if pk.startswith("PUSH#"):
            written = datetime.fromisoformat(item["updated_at"]) - timedelta(seconds=seconds)
            item["updated_at"] = written.isoformat()
    for blob in bucket_of(services).blobs.values():
        blob.modified -= seconds
