"""What garbage collection deletes leaves the quotas: a collected pack's bytes, and those of a
deleted repository whose own freeing was cut off; each once."""

from __future__ import annotations

import pytest
from services.conftest import OLIVIA

from muse_cloud.composition import Services
from muse_cloud.domain.repos import Repo

from .conftest import bucket_of, collector, upload_key, with_a_lost_push


def stored(services: Services, name: str | None = None) -> tuple[int, int]:
    quotas = services.quotas
    usage = (
        quotas.owner_usage(OLIVIA, "olivia")
        if name is None
        else quotas.repository_usage(OLIVIA, "olivia", name)
    )
    return usage.bytes_stored, usage.packs_stored


def test_a_collected_pack_leaves_the_quotas_once(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, lost = with_a_lost_push(services, repo, monkeypatch)
    lost_bytes = len(bucket_of(services).get(upload_key(repo, lost)) or b"")
    # The rival that won the race is a pack of its own: three, all counted.
    before, packs = stored(services, "songs")
    assert packs == 3 and lost_bytes > 0

    (sweep,) = collector(services).run().repositories

    assert sweep.packs == 1
    expected = (before - lost_bytes, 2)
    assert stored(services, "songs") == expected and stored(services) == expected
    assert collector(services).run().repositories[0].outcome == "clean"
    assert stored(services, "songs") == expected


def test_a_deleted_repository_cut_off_before_freeing_is_freed_by_the_pass(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_a_lost_push(services, repo, monkeypatch)
    other = services.repos.create(OLIVIA, "olivia", "other", "public", False)
    with_a_lost_push(services, other, monkeypatch)
    kept = stored(services, "other")
    # The deletion's first step only: the process died before the owner's bytes were freed.
    services.stores.repos.delete(repo)
    assert stored(services)[0] > kept[0]

    services.gc.run()

    assert stored(services) == kept
