"""IngestService on in-memory stores: verify, write, move the refs, record the outcome once."""

from __future__ import annotations

import copy
import gc
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any

import pytest
from histories import linear_history

from muse_cloud.composition import Services
from muse_cloud.domain.repos import Repo
from muse_cloud.services.ingest import IngestService
from muse_cloud.storage import keys
from muse_cloud.storage.backend import Action, Condition, Item, Key, ReturnValues, Update
from muse_cloud.storage.layout import UploadKey
from muse_cloud.storage.memory import MemoryBucket, MemoryTable
from muse_cloud.storage.pack_index import FOLD_AFTER_PACKS
from muse_cloud.storage.stores import Stores

from .conftest import OLIVIA, upload


def test_a_push_is_verified_stored_and_moves_its_ref(services: Services, repo: Repo) -> None:
    history = linear_history(commits=4)
    record = services.ingest.ingest(upload(services, repo, history.pack()))
    assert record.state == "ok", record.error
    assert record.result is not None
    assert (record.result.commits_written, record.result.snapshots_written) == (4, 4)
    assert services.stores.refs.heads(repo.repo_id) == {"main": history.head}
    stored = services.stores.commits.get(repo.repo_id, history.head)
    assert stored is not None and stored.record == history.records[history.head]
    snapshot = history.records[history.head].snapshot_id
    assert services.stores.snapshots.manifest(repo.repo_id, snapshot) == history.snapshots[snapshot]
    assert services.stores.pack_index.known(repo.repo_id, list(history.blobs)) == set(history.blobs)


def test_redelivery_answers_the_recorded_outcome_and_writes_nothing(
    services: Services, repo: Repo
) -> None:
    """The push record is the one idempotency mechanism: a second delivery of the same upload
    finds it final and changes no item."""
    key = upload(services, repo, linear_history().pack())
    first = services.ingest.ingest(key)
    table = services.stores.table
    assert isinstance(table, MemoryTable)
    before = copy.deepcopy(table.items)
    again = services.ingest.ingest(key)
    assert again == first
    assert table.items == before


def test_a_refused_pack_leaves_only_its_push_record(services: Services, repo: Repo) -> None:
    history = linear_history()
    pack = history.pack()
    pack["commits"][-1]["message"] = "forged"
    record = services.ingest.ingest(upload(services, repo, pack))
    assert record.state == "failed" and record.error is not None
    assert record.error.code == "commit_id_mismatch"
    table = services.stores.table
    assert isinstance(table, MemoryTable)
    kinds = {pk.split("#")[0] for pk, _ in table.items}
    assert kinds == {"REPO", "SLUG", "PUSH"}, kinds
    assert services.stores.refs.heads(repo.repo_id) == {}


def test_nested_branch_names_refused_by_the_conditional_write(
    services: Services, repo: Repo
) -> None:
    history = linear_history(commits=1)
    services.ingest.ingest(upload(services, repo, history.pack({"x": history.head})))
    nested = history.add({"tracks/n.mid": b"n"})
    record = services.ingest.ingest(
        upload(services, repo, history.pack({"x/y": nested}, have=history.order[:1]))
    )
    assert record.error is not None and record.error.code == "branch_name_conflict"
    assert services.stores.refs.heads(repo.repo_id) == {"x": history.order[0]}


class Crash(BaseException):
    """The sandbox dies: no ``except Exception`` sees it, and nothing after it is written."""


class CrashingTable(MemoryTable):
    """A table whose writes stop for good at the ``crash_at``-th one (0: never)."""

    def __init__(self) -> None:
        super().__init__()
        self.crash_at = 0
        self.writes = 0

    def _write(self) -> None:
        self.writes += 1
        if 0 < self.crash_at <= self.writes:
            raise Crash(f"write {self.writes}")

    def put(self, item: Mapping[str, Any], condition: Condition | None = None) -> None:
        self._write()
        super().put(item, condition)

    def change(
        self,
        key: Key,
        update: Update,
        condition: Condition | None = None,
        returns: ReturnValues = "NONE",
    ) -> Item | None:
        self._write()
        return super().change(key, update, condition, returns)

    def transact(self, actions: Sequence[Action]) -> None:
        self._write()
        super().transact(actions)

    def put_many(self, items: Sequence[Mapping[str, Any]], ordered: bool = False) -> None:
        self._write()
        super().put_many(items, ordered)


def _normalised(table: MemoryTable, repo_id: str) -> dict[tuple[str, ...], Any]:
    """The items, the repository's id replaced, without the push record's own bookkeeping
    (times, lease, attempts) and the time a ref moved."""

    def plain(value: Any) -> Any:
        return value.replace(repo_id, "R") if isinstance(value, str) else value

    kept: dict[tuple[str, ...], Any] = {}
    outbox = 0
    for (pk, sk), item in table.items.items():
        if pk == keys.OUTBOX:
            # Keyed and stamped by when the ref change was made, its events too: counted.
            events = [
                {k: v for k, v in e.items() if k not in ("event_id", "at")} for e in item["events"]
            ]
            kept[(pk, str(outbox))] = {
                "events": [{k: plain(v) for k, v in e.items()} for e in events]
            }
            outbox += 1
            continue
        if pk.startswith("PUSH#"):
            item = {k: item.get(k) for k in ("state", "branch", "head", "error", "result")}
            item["result"] = {k: v for k, v in (item["result"] or {}).items() if "_" not in k}
        item = {k: plain(v) for k, v in item.items() if k not in ("updated_at", "created_at")}
        kept[(plain(pk), plain(sk))] = item
    return kept


def _crashed_run(crash_at: int) -> tuple[CrashingTable, Services, Repo, UploadKey]:
    """One push of a two-branch history whose ingestion dies at its ``crash_at``-th write."""
    table = CrashingTable()
    services = Services.of(Services.in_memory().settings, Stores.over(table, MemoryBucket()))
    repo = services.repos.create(OLIVIA, "olivia", "songs", "public", False)
    history = linear_history(commits=3)
    history.add({"tracks/side.mid": b"s"}, parent=history.order[0])
    key = upload(services, repo, history.pack({"main": history.order[2], "side": history.head}))
    table.crash_at = table.writes + crash_at if crash_at else 0
    # A lease already run out: the rerun may take the push over at once.
    with suppress(Crash):
        IngestService(
            services.stores, lease_seconds=-1, on_stored=services.quotas.count_stored
        ).ingest(key)
    table.crash_at = 0
    return table, services, repo, key


def test_a_crash_at_every_write_converges_on_redelivery() -> None:
    clean, _, clean_repo, _ = _crashed_run(0)
    expected = _normalised(clean, clean_repo.repo_id)
    writes = clean.writes - 2  # the two of creating the repository
    assert writes >= 8
    for crash_at in range(1, writes + 1):
        table, services, repo, key = _crashed_run(crash_at)
        for head in services.stores.refs.heads(repo.repo_id).values():
            # No ref ever points at a commit that cannot be read.
            assert services.stores.commits.get(repo.repo_id, head) is not None, crash_at
        record = services.ingest.ingest(key)
        assert record.state == "ok", (crash_at, record.error)
        assert _normalised(table, repo.repo_id) == expected, crash_at


class CountingTable(MemoryTable):
    """A table that counts the calls made to it by method (each is one request on DynamoDB),
    not those its methods make to each other."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        # The sort-key prefix of each Query.
        self.queried: list[str] = []
        self.inside = False

    def __getattribute__(self, name: str) -> Any:
        method = super().__getattribute__(name)
        if name not in REQUEST_METHODS or object.__getattribute__(self, "inside"):
            return method

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if name == "query":
                self.queried.append(args[1])
            self.inside = True
            try:
                return method(*args, **kwargs)
            finally:
                self.inside = False

        return counted


REQUEST_METHODS = frozenset(
    {"get", "get_many", "query", "put", "change", "delete", "transact", "put_many"}
)


def test_a_one_commit_push_reads_each_thing_once_and_nothing_that_grows() -> None:
    """On top of a held history, a push of one commit reads no list that grows with the
    repository (its one Query reads the MIDX pointer and the packs not folded yet), and each
    held thing once: the claim and the GC hold, the repository and its rules, the delta base
    (rebuilt from the manifest its own push wrote), the parent, the target ref; and so on the
    push that folds the pack indexes into the MIDX too."""
    table = CountingTable()
    services = Services.of(Services.in_memory().settings, Stores.over(table, MemoryBucket("b")))
    repo = services.repos.create(OLIVIA, "olivia", "songs", "public", False)
    history = linear_history(commits=60)
    assert services.ingest.ingest(upload(services, repo, history.pack())).state == "ok"
    reads = []
    # Until the first fold, no pointer says which packs are marked: every PACK item is read.
    for n in range(2 * FOLD_AFTER_PACKS):
        have = list(history.order)
        history.add({"tracks/x-0.mid": history.head.encode()})
        table.calls.clear()
        table.queried.clear()
        record = services.ingest.ingest(upload(services, repo, history.pack(have=have)))
        assert record.state == "ok", record.error
        if n >= FOLD_AFTER_PACKS:
            reads.append(tuple(table.calls[name] for name in ("get", "get_many", "query")))
            assert table.queried == [keys.MIDX_SK]
    assert reads == [(3, 4, 1)] * FOLD_AFTER_PACKS
    assert services.stores.refs.heads(repo.repo_id) == {"main": history.head}


def test_a_manifest_remembered_for_one_repository_is_no_base_in_another(
    services: Services, repo: Repo
) -> None:
    """The container remembers the manifest of the last snapshot a push wrote, and serves it
    only to a push into the repository that stores that snapshot."""
    history = linear_history(commits=3)
    assert services.ingest.ingest(upload(services, repo, history.pack())).state == "ok"
    other = services.repos.create(OLIVIA, "olivia", "other", "public", False)
    have = list(history.order)
    history.add({"tracks/x-0.mid": b"next"})
    record = services.ingest.ingest(upload(services, other, history.pack(have=have)))
    assert record.state == "failed" and record.error is not None
    assert record.error.code == "unknown_delta_base", record.error
    assert services.stores.refs.heads(other.repo_id) == {}


def test_an_ingestion_runs_no_full_collection(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an ingestion builds lives until it ends: full collections would only walk it. Here
    a collection of every generation is due at every allocation, and while the pack is verified
    or written only young ones run (they free what requests leave)."""
    history = linear_history(commits=30)
    key = upload(services, repo, history.pack())
    collections: list[int] = []
    inside: list[str] = []

    def observed(name: str) -> None:
        original = getattr(services.ingest, name)

        def step(*args: Any) -> Any:
            inside.append(name)
            try:
                return original(*args)
            finally:
                inside.pop()

        monkeypatch.setattr(services.ingest, name, step)

    def noted(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and inside:
            collections.append(info["generation"])

    observed("_verify")
    observed("_write")
    thresholds = gc.get_threshold()
    gc.callbacks.append(noted)
    gc.set_threshold(1, 1, 1)
    try:
        record = services.ingest.ingest(key)
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(noted)
    assert record.state == "ok", record.error
    assert collections and max(collections) < 2, sorted(set(collections))
