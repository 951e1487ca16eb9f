"""Garbage collection beside pushes: a push that relies on history no ref reaches yet (a commit
of a push that lost its race, built on) either keeps it or is refused, never left pointing at
what was deleted; whichever of the two writes first, the other sees it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from histories import History
from services.conftest import OLIVIA, upload

from muse_cloud.composition import Services
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.pushes import PushRecord, PushRequest
from muse_cloud.domain.repos import Repo
from muse_cloud.services.gc import STEP_SECONDS
from muse_cloud.services.ingest import IngestBusy
from muse_cloud.storage.gc_hold import Hold
from muse_cloud.storage.layout import UploadKey

from .conftest import collector, pass_time, table_of, with_a_lost_push
from .test_sweep import everything_reads


@dataclass(frozen=True)
class _BuiltOn:
    """A push of a branch built on a lost push's commit: it finds that commit, its snapshot
    and objects held, and sends none of them."""

    services: Services
    repo: Repo
    history: History
    lost: str
    upload: UploadKey

    @property
    def request(self) -> PushRequest:
        return PushRequest("feature", self.history.head)

    def claim(self) -> PushRecord | None:
        """What an ingestion run does first."""
        return self.services.stores.pushes.claim(
            self.repo.repo_id, self.upload.mpack_hex, self.upload.mpack_key, 900, self.request
        )


def _built_on_a_lost_push(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> _BuiltOn:
    history, _, lost = with_a_lost_push(services, repo, monkeypatch, commits=2)
    assert lost.head is not None
    on_top = history.add({"tracks/b.mid": b"on top\n"}, parent=lost.head)
    pack = history.pack({"feature": on_top}, [lost.head])
    assert [c["commit_id"] for c in pack["commits"]] == [on_top]
    return _BuiltOn(services, repo, history, lost.head, upload(services, repo, pack))


def _during_the_hold(
    services: Services, monkeypatch: pytest.MonkeyPatch, before: Callable[[], Any] | None = None
) -> list[Any]:
    """Run ``before`` right before the collector takes its hold; answers what the hold was."""
    holds = services.stores.gc_holds
    real = holds.take
    taken: list[Any] = []

    def take(repo_id: str, seconds: int) -> Hold | None:
        if before is not None:
            before()
        hold = real(repo_id, seconds)
        taken.append(hold)
        return hold

    monkeypatch.setattr(holds, "take", take)
    return taken


def test_a_push_claimed_before_the_hold_keeps_the_repository_for_the_next_pass(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _built_on_a_lost_push(services, repo, monkeypatch)
    assert built.claim() is not None
    table = dict(table_of(services).items)

    report = collector(services).run()

    assert report.repositories[0].outcome == "busy"
    assert built.upload.mpack_hex in report.repositories[0].reason
    assert table_of(services).items == table


def test_a_push_claimed_between_the_marking_and_the_hold_stops_the_sweep(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _built_on_a_lost_push(services, repo, monkeypatch)
    _during_the_hold(services, monkeypatch, before=built.claim)

    report = collector(services).run()

    sweep = report.repositories[0]
    pushing = built.upload.mpack_hex
    assert (sweep.outcome, sweep.reason) == ("busy", f"push {pushing} is being ingested")
    assert (sweep.items, sweep.files) == (0, [])
    assert services.stores.commits.known(repo.repo_id, [built.lost]) == {built.lost}


def test_a_push_claimed_during_the_hold_waits_for_it_then_is_refused_whole(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _built_on_a_lost_push(services, repo, monkeypatch)
    upload_key, request = built.upload, built.request
    # The lost push a day old, the one built on it presigned now (so its upload is no stale
    # one the sweep deletes).
    pack_bytes = services.stores.bucket.get(upload_key.s3_key)
    assert pack_bytes is not None
    services.stores.bucket.delete_keys([upload_key.s3_key])
    pass_time(services, 86_400)
    services.stores.pushes.open_pending(
        repo.repo_id, upload_key.mpack_hex, upload_key.mpack_key, 1, "feature", None, False, {}
    )
    services.stores.packs.put_upload(upload_key, pack_bytes)
    taken = _during_the_hold(services, monkeypatch)
    waited: list[int] = []
    real_delete = services.stores.table.delete_many

    def delete_many(keys: Any, ordered: bool = False) -> None:
        # The hold is taken and the sweep deletes: a push of the built-on branch arrives.
        monkeypatch.setattr(services.stores.table, "delete_many", real_delete)
        with pytest.raises(IngestBusy) as busy:
            services.ingest.ingest(upload_key, request)
        waited.append(busy.value.retry_in)
        real_delete(keys, ordered)

    monkeypatch.setattr(services.stores.table, "delete_many", delete_many)
    report = services.gc.run(grace_seconds=3600)

    assert report.repositories[0].outcome == "swept"
    assert taken[0] is not None and 1 <= waited[0] <= services.gc.hold_seconds
    record = services.stores.pushes.get(repo.repo_id, upload_key.mpack_hex)
    assert record is not None and (record.state, record.attempts) == ("pending", 0)
    # The hold is given back: the push runs, finds its base gone, and is refused whole.
    assert services.stores.gc_holds.held_until(repo.repo_id) is None
    retried = services.ingest.ingest(upload_key, request)
    assert retried.state == "failed" and retried.error is not None
    # Its delta base was the lost commit's snapshot, deleted by the sweep.
    assert retried.error.code == "unknown_delta_base"
    assert retried.error.item == built.history.records[built.lost].snapshot_id
    assert "feature" not in services.stores.refs.heads(repo.repo_id)
    everything_reads(services, repo)


def test_a_push_that_finished_before_the_pass_keeps_what_it_built_on(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _built_on_a_lost_push(services, repo, monkeypatch)
    assert services.ingest.ingest(built.upload, built.request).state == "ok"

    sweep = collector(services).run().repositories[0]

    # The lost commit is under feature now.
    assert services.stores.commits.known(repo.repo_id, [built.lost]) == {built.lost}
    assert sweep.commits == 0
    everything_reads(services, repo)


def test_a_tag_on_unreachable_history_during_the_hold_is_taken_back(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = with_a_lost_push(services, repo, monkeypatch, commits=2).lost
    tag = {"tag_id": "t1", "tag": "v1", "commit_id": lost.head}
    refused: list[ServiceError] = []
    real_delete = services.stores.table.delete_many

    def delete_many(keys: Any, ordered: bool = False) -> None:
        # The sweep's first delete: the hold is taken (taking the tag back deletes too).
        monkeypatch.setattr(services.stores.table, "delete_many", real_delete)
        with pytest.raises(ServiceError) as busy:
            services.releases.add_tags(OLIVIA, "olivia", "songs", [tag])
        refused.append(busy.value)
        real_delete(keys, ordered)

    monkeypatch.setattr(services.stores.table, "delete_many", delete_many)
    assert collector(services).run().repositories[0].outcome == "swept"

    assert refused[0].code == "repository_busy" and refused[0].item == repo.repo_id
    assert services.stores.releases.tags(repo.repo_id) == []
    with pytest.raises(ServiceError) as gone:
        services.releases.add_tags(OLIVIA, "olivia", "songs", [tag])
    assert gone.value.code == "missing_commit"


def test_a_tag_names_a_root(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = with_a_lost_push(services, repo, monkeypatch, commits=2).lost
    tag = {"tag_id": "t1", "tag": "v1", "commit_id": lost.head}
    assert services.releases.add_tags(OLIVIA, "olivia", "songs", [tag]) == {"stored": 1}

    sweep = collector(services).run().repositories[0]

    assert sweep.commits == 0 and lost.head is not None
    assert services.stores.commits.known(repo.repo_id, [lost.head]) == {lost.head}


def test_two_collections_of_one_repository_do_not_sweep_at_once(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_a_lost_push(services, repo, monkeypatch, commits=2)
    other = services.stores.gc_holds.take(repo.repo_id, 60)
    assert other is not None

    sweep = collector(services).run().repositories[0]

    assert (sweep.outcome, sweep.reason) == ("busy", "another collection holds the repository")
    services.stores.gc_holds.give_back(other)
    assert collector(services).run().repositories[0].outcome == "swept"


def test_a_sweep_out_of_hold_stops_between_steps_and_the_next_pass_goes_on(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_a_lost_push(services, repo, monkeypatch)
    real_delete = services.stores.table.delete_many

    def slow_delete(keys: Any, ordered: bool = False) -> None:
        real_delete(keys, ordered)
        time.sleep(2.1)

    monkeypatch.setattr(services.stores.table, "delete_many", slow_delete)
    # Just more than a step's margin (the hold ends on a whole second, up to one later): the
    # commits go, then what is left of the hold is too short to go on.
    short = replace(collector(services), hold_seconds=STEP_SECONDS + 1)

    stopped = short.run().repositories[0]

    assert (stopped.outcome, stopped.commits) == ("stopped", 1)
    assert services.stores.gc_holds.held_until(repo.repo_id) is None
    everything_reads(services, repo)
    monkeypatch.setattr(services.stores.table, "delete_many", real_delete)
    rest = collector(services).run().repositories[0]
    assert (rest.outcome, rest.commits, rest.snapshots, rest.packs) == ("swept", 0, 1, 1)
    everything_reads(services, repo)
