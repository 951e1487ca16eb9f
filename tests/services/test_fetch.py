"""Fetch packs on in-memory stores: the same heads and haves are answered with the pack built
for them before, and anything that changes what the pack would hold builds another."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
from histories import History, linear_history

from muse_cloud.composition import Services
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.repos import Repo
from muse_cloud.services.fetch import LOST_BUILD_SECONDS, FetchPack
from muse_cloud.storage import keys
from muse_cloud.storage.layout import FetchBuildKey
from muse_core.mpack import decode_mpack, mpack_key

from .conftest import OLIVIA, upload


def _pushed(services: Services, repo: Repo, history: History, have: list[str]) -> None:
    key = upload(services, repo, history.pack(have=have))
    assert services.ingest.ingest(key).state == "ok"


def _bytes(services: Services, repo: Repo, fetched: FetchPack) -> bytes:
    assert fetched.status == "ready" and fetched.mpack_key is not None
    data = services.stores.bucket.get(f"fetch/{repo.repo_id}/{fetched.mpack_key[7:]}.mpack")
    assert data is not None and mpack_key(data) == fetched.mpack_key
    return data


def _history_unread(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    def unread(*args: Any) -> Any:
        raise AssertionError("the history was read again")

    monkeypatch.setattr(services.stores.commits, "get_many", unread)
    monkeypatch.setattr(services.stores.snapshots, "items", unread)


def test_unchanged_heads_are_answered_with_the_pack_built_before(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = linear_history(commits=4)
    _pushed(services, repo, history, [])
    first = services.fetch.fetch(OLIVIA, "olivia", "songs", [], [])
    _history_unread(services, monkeypatch)
    again = services.fetch.fetch(OLIVIA, "olivia", "songs", [], [])
    assert again == first
    assert len(decode_mpack(_bytes(services, repo, again))["commits"]) == 4


def test_a_moved_head_or_another_have_gets_its_own_pack(services: Services, repo: Repo) -> None:
    history = linear_history(commits=3)
    _pushed(services, repo, history, [])
    before = services.fetch.fetch(OLIVIA, "olivia", "songs", [], [])
    history.add({"tracks/new.mid": b"new"})
    _pushed(services, repo, history, [history.order[-2]])
    after = services.fetch.fetch(OLIVIA, "olivia", "songs", [], [])
    assert after.mpack_key != before.mpack_key
    assert after.commits == 4 and after.branch_heads == {"main": history.head}
    newest = services.fetch.fetch(OLIVIA, "olivia", "songs", [], [history.order[-2]])
    assert newest.commits == 1
    commits = decode_mpack(_bytes(services, repo, newest))["commits"]
    assert [c["commit_id"] for c in commits] == [history.head]


def test_a_pack_gone_from_the_bucket_is_built_again(services: Services, repo: Repo) -> None:
    history = linear_history(commits=2)
    _pushed(services, repo, history, [])
    first = services.fetch.fetch(OLIVIA, "olivia", "songs", [], [])
    assert first.mpack_key is not None
    pack_key = f"fetch/{repo.repo_id}/{first.mpack_key[7:]}.mpack"
    assert services.stores.bucket.delete_prefix(pack_key) == []
    again = services.fetch.fetch(OLIVIA, "olivia", "songs", [], [])
    assert again == first
    assert _bytes(services, repo, again)


def _handed_over(services: Services, repo: Repo, history: History) -> tuple[FetchPack, str]:
    """A clone's fetch whose build runs out of time at once: what it answers, and the object
    that hands the build to the unpack function."""
    _pushed(services, repo, history, [])
    services.fetch.build_seconds = -1
    asked = services.fetch.fetch(OLIVIA, "olivia", "songs", [], [])
    builds = [f.key for f in services.stores.bucket.files(f"fetch/{repo.repo_id}/builds/")]
    return asked, builds[0]


def test_a_build_out_of_time_is_handed_over_and_answered_once_built(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = linear_history(commits=4)
    asked, key = _handed_over(services, repo, history)
    assert (asked.status, asked.download_url, asked.retry_after_seconds) == ("building", None, 2)
    assert asked.branch_heads == {"main": history.head}
    polled = services.fetch.build(OLIVIA, "olivia", "songs", asked.build_id)
    assert polled == asked
    build = FetchBuildKey.parse(key)
    assert build == FetchBuildKey(repo.repo_id, asked.build_id)

    services.fetch.build_handed_over(build)
    ready = services.fetch.build(OLIVIA, "olivia", "songs", asked.build_id)
    assert (ready.status, ready.commits, ready.branch_heads) == ("ready", 4, asked.branch_heads)
    assert len(decode_mpack(_bytes(services, repo, ready))["commits"]) == 4
    # Delivered again (at least once), or asked again: the pack is there, nothing is read.
    _history_unread(services, monkeypatch)
    services.fetch.build_handed_over(build)
    assert services.fetch.fetch(OLIVIA, "olivia", "songs", [], []) == ready
    assert services.fetch.build(OLIVIA, "olivia", "songs", asked.build_id) == ready


def test_a_build_refused_in_the_background_answers_its_refusal(
    services: Services, repo: Repo
) -> None:
    history = linear_history(commits=3)
    asked, key = _handed_over(services, repo, history)
    lost = history.records[history.head].snapshot_id
    assert services.stores.table.delete(keys.snapshot(repo.repo_id, lost)) is not None
    build = FetchBuildKey.parse(key)
    assert build is not None
    services.fetch.build_handed_over(build)
    with pytest.raises(ServiceError) as refused:
        services.fetch.build(OLIVIA, "olivia", "songs", asked.build_id)
    assert (refused.value.code, refused.value.item) == ("not_found", lost)
    with pytest.raises(ServiceError) as again:
        services.fetch.fetch(OLIVIA, "olivia", "songs", [], [])
    assert (again.value.code, again.value.item) == ("not_found", lost)


def test_a_build_of_a_deleted_repository_is_dropped(services: Services, repo: Repo) -> None:
    asked, key = _handed_over(services, repo, linear_history(commits=2))
    services.repos.delete(OLIVIA, repo.repo_id)
    build = FetchBuildKey.parse(key)
    assert build is not None
    services.fetch.build_handed_over(build)
    assert services.stores.fetch_packs.find(repo.repo_id, asked.build_id) is None
    with pytest.raises(ServiceError) as gone:
        services.fetch.build(OLIVIA, "olivia", "songs", asked.build_id)
    assert gone.value.code == "not_found"


def test_a_build_nobody_handed_over_is_not_found(services: Services, repo: Repo) -> None:
    _pushed(services, repo, linear_history(commits=1), [])
    with pytest.raises(ServiceError) as missing:
        services.fetch.build(OLIVIA, "olivia", "songs", "ab" * 32)
    assert (missing.value.code, missing.value.item) == ("not_found", "ab" * 32)


def test_a_fetch_asked_again_while_its_pack_builds_is_not_built_twice(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked, key = _handed_over(services, repo, linear_history(commits=2))
    _history_unread(services, monkeypatch)
    services.fetch.build_seconds = 60
    assert services.fetch.fetch(OLIVIA, "olivia", "songs", [], []) == asked
    assert [f.key for f in services.stores.bucket.files(f"fetch/{repo.repo_id}/builds/")] == [key]


def test_a_build_handed_over_and_lost_is_built_again_when_asked(
    services: Services, repo: Repo
) -> None:
    """Its notification lost, or its run ended by the unpack function's timeout: a fetch past
    LOST_BUILD_SECONDS builds it again rather than wait for it for a day."""
    asked, key = _handed_over(services, repo, linear_history(commits=2))
    build = FetchBuildKey.parse(key)
    assert build is not None
    handed = services.stores.fetch_packs.build_asked(build)
    assert handed is not None and abs(handed.asked_at - time.time()) < 60
    lost = replace(handed, asked_at=handed.asked_at - LOST_BUILD_SECONDS - 1)
    services.stores.fetch_packs.ask_build(repo.repo_id, asked.build_id, lost)
    # Within the time, it would still be building; past it, the call builds it again.
    again = services.fetch.fetch(OLIVIA, "olivia", "songs", [], [])
    assert again.status == "building"
    handed_again = services.stores.fetch_packs.build_asked(build)
    assert handed_again is not None and handed_again.asked_at > lost.asked_at
    services.stores.fetch_packs.ask_build(repo.repo_id, asked.build_id, lost)
    services.fetch.build_seconds = 60
    ready = services.fetch.fetch(OLIVIA, "olivia", "songs", [], [])
    assert (ready.status, ready.build_id, ready.commits) == ("ready", asked.build_id, 2)
