"""Fetch packs on in-memory stores: the same heads and haves are answered with the pack built
for them before, and anything that changes what the pack would hold builds another."""

from __future__ import annotations

from typing import Any

import pytest
from histories import History, linear_history

from muse_cloud.composition import Services
from muse_cloud.domain.repos import Repo
from muse_cloud.services.fetch import FetchPack
from muse_core.mpack import decode_mpack, mpack_key

from .conftest import OLIVIA, upload


def _pushed(services: Services, repo: Repo, history: History, have: list[str]) -> None:
    key = upload(services, repo, history.pack(have=have))
    assert services.ingest.ingest(key).state == "ok"


def _bytes(services: Services, repo: Repo, fetched: FetchPack) -> bytes:
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
    pack_key = f"fetch/{repo.repo_id}/{first.mpack_key[7:]}.mpack"
    assert services.stores.bucket.delete_prefix(pack_key) == []
    again = services.fetch.fetch(OLIVIA, "olivia", "songs", [], [])
    assert again == first
    assert _bytes(services, repo, again)
