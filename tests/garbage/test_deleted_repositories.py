"""A deleted repository: every item and file goes, whatever kind and however it was keyed, and
nothing of another repository."""

from __future__ import annotations

from dataclasses import replace

import pytest
from histories import linear_history
from services.conftest import OLIVIA

from muse_cloud.composition import Services
from muse_cloud.domain.repos import Repo
from muse_cloud.storage import keys
from muse_core.mpack import encode_mpack, mpack_key

from .conftest import bucket_of, collector, push, table_of, with_a_lost_push


def _busy_repository(services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pushes that landed, lost and were never uploaded, a tag, a collaborator, a large
    object served once (copied out of its pack)."""
    history, _, lost = with_a_lost_push(services, repo, monkeypatch)
    services.releases.add_tags(
        OLIVIA, repo.owner, repo.name, [{"tag_id": "t", "tag": "v1", "commit_id": lost.head}]
    )
    services.repos.set_collaborator(OLIVIA, repo.repo_id, "walt", "write")
    never = encode_mpack(history.pack({"main": history.add({"n.mid": b"n"})}, history.order))
    services.push.presign(
        OLIVIA, repo.owner, repo.name, mpack_key(never), len(never), "main", None, False
    )
    location = services.stores.pack_index.locate(repo.repo_id, next(iter(history.blobs)))
    assert location is not None
    services.stores.packs.presign_object(repo.repo_id, location)


def _of(services: Services, repo_id: str) -> tuple[set[tuple[str, str]], set[str]]:
    items = {k for k in table_of(services).items if repo_id in k[0] or repo_id == k[1]}
    return items, {k for k in bucket_of(services).blobs if repo_id in k}


def test_every_item_and_file_of_a_deleted_repository_goes(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    _busy_repository(services, repo, monkeypatch)
    other = services.repos.create(OLIVIA, "olivia", "other", "public", False)
    _busy_repository(services, other, monkeypatch)
    kept = _of(services, other.repo_id)
    items, _ = _of(services, repo.repo_id)
    kinds = {pk.split("#")[0] for pk, _ in items}
    assert kinds == {"REPO", "COMMIT", "SNAP", "PUSH"}, kinds

    services.repos.delete(OLIVIA, repo.repo_id)
    left, files = _of(services, repo.repo_id)
    assert files == set()
    assert {pk.split("#")[0] for pk, _ in left} == kinds | {keys.DELETED_REPOS}

    report = services.gc.run()

    sweep = next(r for r in report.repositories if r.repo_id == repo.repo_id)
    assert (sweep.outcome, sweep.name) == ("deleted", "olivia/songs")
    assert sweep.items == len(left) - 1 and sweep.commits == 5 and sweep.packs >= 2
    # The tombstone stays until no ingestion that began before the deletion can be writing.
    assert _of(services, repo.repo_id) == ({(keys.DELETED_REPOS, repo.repo_id)}, set())
    assert _of(services, other.repo_id) == kept
    replace(services.gc, longest_run_seconds=0).run()
    assert _of(services, repo.repo_id) == (set(), set())
    assert services.stores.repos.deleted() == []
    assert _of(services, other.repo_id) == kept


def test_uploads_of_a_repository_with_no_meta_item_are_a_deleted_repository(
    services: Services, repo: Repo
) -> None:
    """Deleted before tombstones were written, and its bytes kept by a failed delete."""
    history = linear_history()
    push(services, repo, history.pack())
    table = table_of(services)
    del table.items[(keys.repo_meta(repo.repo_id)["pk"], "META")]

    planned = collector(services).run(dry_run=True)
    assert services.stores.repos.deleted() == []
    collector(services).run()

    (sweep,) = planned.repositories
    assert (sweep.outcome, sweep.repo_id, sweep.name) == ("deleted", repo.repo_id, "")
    assert _of(services, repo.repo_id) == (set(), set())
