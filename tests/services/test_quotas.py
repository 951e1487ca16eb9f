"""Quotas on in-memory stores: bytes stored per repository and per owner (refused at presign,
counted once per ingested pack, freed with a deleted repository or a collected pack), pushes per
minute (refused with the seconds to wait), and who may read the usage."""

from __future__ import annotations

import pytest
from histories import History, linear_history

from muse_cloud.api.statuses import http_status
from muse_cloud.composition import Services
from muse_cloud.config import Settings
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import ANONYMOUS, Caller
from muse_cloud.domain.repos import Repo
from muse_cloud.storage.layout import UploadKey
from muse_core.mpack import encode_mpack, mpack_key

from .conftest import ADMIN, OLIVIA, STRANGER


def quota_services(**quotas: int) -> Services:
    settings = Settings(
        table_name="memory",
        bucket_name="memory",
        event_bus_name="memory",
        **quotas,  # type: ignore[arg-type]
    )
    return Services.in_memory(settings)


def pushed(services: Services, repo: Repo, history: History, branch: str = "main") -> int:
    """Presign, upload and ingest the whole history's pack for ``branch``; the pack's size."""
    data = encode_mpack(history.pack())
    key = mpack_key(data)
    services.push.presign(
        OLIVIA, repo.owner, repo.name, key, len(data), branch, history.head, False
    )
    services.stores.packs.put_upload(UploadKey(repo.repo_id, key.removeprefix("sha256:")), data)
    record = services.push.unpack(OLIVIA, repo.owner, repo.name, key, branch, history.head, False)
    assert record.state == "ok", record.error
    return len(data)


def refusal(call: object, *args: object) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


def test_bytes_are_counted_once_per_pack_whatever_ingests_it_again() -> None:
    services = quota_services()
    repo = services.repos.create(OLIVIA, "olivia", "songs", "public", False)
    history = linear_history(commits=3)
    size = pushed(services, repo, history)
    # Redelivered, ingested again for another branch (the same bytes): still one pack.
    services.ingest.ingest(UploadKey(repo.repo_id, mpack_key(encode_mpack(history.pack()))[7:]))
    pushed(services, repo, history, branch="copy")
    repo_usage = services.quotas.repository_usage(OLIVIA, "olivia", "songs")
    owner_usage = services.quotas.owner_usage(OLIVIA, "olivia")
    assert (repo_usage.bytes_stored, repo_usage.packs_stored) == (size, 1)
    assert (owner_usage.bytes_stored, owner_usage.packs_stored) == (size, 1)
    assert repo_usage.pushes_this_minute == 2


def test_a_push_over_the_repository_or_owner_quota_is_refused_at_presign() -> None:
    first = linear_history(commits=2, tag="a")
    size = len(encode_mpack(first.pack()))
    services = quota_services(repo_max_bytes=size * 2, owner_max_bytes=size * 3)
    songs = services.repos.create(OLIVIA, "olivia", "songs", "public", False)
    pushed(services, songs, first)
    bigger = linear_history(commits=4, tag="b")
    data = encode_mpack(bigger.pack())
    assert len(data) > size
    error = refusal(
        services.push.presign,
        OLIVIA,
        "olivia",
        "songs",
        mpack_key(data),
        len(data),
        "b",
        None,
        False,
    )
    assert (http_status(error), error.code, error.item) == (413, "quota_exceeded", "olivia/songs")
    assert f"{size:,} of its {size * 2:,} bytes" in error.message
    # A pack stored already adds nothing: presigning it again is never over the quota.
    again = encode_mpack(first.pack())
    services.push.presign(OLIVIA, "olivia", "songs", mpack_key(again), len(again), "x", None, False)
    assert services.stores.pushes.get(songs.repo_id, mpack_key(data)[7:]) is None


def test_the_owner_quota_counts_every_repository_of_theirs() -> None:
    first = linear_history(commits=2, tag="a")
    size = len(encode_mpack(first.pack()))
    services = quota_services(owner_max_bytes=size * 2)
    songs = services.repos.create(OLIVIA, "olivia", "songs", "public", False)
    demos = services.repos.create(OLIVIA, "olivia", "demos", "public", False)
    pushed(services, songs, first)
    data = encode_mpack(linear_history(commits=4, tag="b").pack())
    error = refusal(
        services.push.presign,
        OLIVIA,
        "olivia",
        "demos",
        mpack_key(data),
        len(data),
        "b",
        None,
        False,
    )
    assert (http_status(error), error.code, error.item) == (413, "quota_exceeded", "olivia")
    assert services.stores.pushes.get(demos.repo_id, mpack_key(data)[7:]) is None
    # Another owner's repository is not theirs to fill.
    services.repos.create(ADMIN, "stan", "tunes", "public", False)
    services.push.presign(ADMIN, "stan", "tunes", mpack_key(data), len(data), "b", None, False)


def test_pushes_a_minute_are_limited_per_repository_and_per_owner() -> None:
    services = quota_services(repo_pushes_per_minute=2, owner_pushes_per_minute=3)
    now = [1_000_000_040.5]  # 20.5 s into a window
    services.quotas.clock = lambda: now[0]
    services.repos.create(OLIVIA, "olivia", "songs", "public", False)
    services.repos.create(OLIVIA, "olivia", "demos", "public", False)
    data = encode_mpack(linear_history().pack())
    key = mpack_key(data)

    def presign(name: str) -> None:
        services.push.presign(OLIVIA, "olivia", name, key, len(data), "main", None, False)

    presign("songs")
    presign("songs")
    error = refusal(presign, "songs")
    assert (http_status(error), error.code, error.item) == (429, "rate_limited", "olivia/songs")
    assert error.retry_after == 40 and "retry in 40 s" in error.message
    presign("demos")
    error = refusal(presign, "demos")
    assert (error.code, error.item, error.retry_after) == ("rate_limited", "olivia", 40)
    # A refused push takes nothing: the repository's count stays at its limit, not past it.
    assert services.quotas.repository_usage(OLIVIA, "olivia", "songs").pushes_this_minute == 2
    assert services.quotas.owner_usage(OLIVIA, "olivia").pushes_this_minute == 3
    now[0] += 40
    presign("songs")
    assert services.quotas.owner_usage(OLIVIA, "olivia").pushes_this_minute == 1


def test_deleting_a_repository_frees_its_bytes_and_counts_nothing_after() -> None:
    services = quota_services()
    songs = services.repos.create(OLIVIA, "olivia", "songs", "public", False)
    demos = services.repos.create(OLIVIA, "olivia", "demos", "public", False)
    kept = pushed(services, demos, linear_history(commits=2, tag="d"))
    history = linear_history(commits=3)
    pushed(services, songs, history)
    services.repos.delete(OLIVIA, songs.repo_id)
    owner = services.quotas.owner_usage(OLIVIA, "olivia")
    assert (owner.bytes_stored, owner.packs_stored) == (kept, 1)
    # A run that was ingesting when the repository went counts nothing, and freeing again
    # (garbage collection finding the repository's items) frees nothing twice.
    store = services.stores.quotas
    assert not store.count_stored(songs.repo_id, "olivia", "ab" * 32, 100)
    assert store.free_repository(songs.repo_id) == 0
    assert services.quotas.owner_usage(OLIVIA, "olivia").bytes_stored == kept


def test_garbage_collection_frees_a_pack_once() -> None:
    services = quota_services()
    repo = services.repos.create(OLIVIA, "olivia", "songs", "public", False)
    history = linear_history(commits=2)
    size = pushed(services, repo, history)
    more = linear_history(commits=3, tag="m")
    other = pushed(services, repo, more, branch="more")
    mpack_hex = mpack_key(encode_mpack(more.pack()))[7:]
    store = services.stores.quotas
    assert store.free_pack(repo.repo_id, mpack_hex) == other
    assert store.free_pack(repo.repo_id, mpack_hex) == 0
    for usage in (
        services.quotas.repository_usage(OLIVIA, "olivia", "songs"),
        services.quotas.owner_usage(OLIVIA, "olivia"),
    ):
        assert (usage.bytes_stored, usage.packs_stored) == (size, 1)
    # Once the repository's usage went with it, a pack freed after takes nothing off the owner.
    services.repos.delete(OLIVIA, repo.repo_id)
    first = mpack_key(encode_mpack(history.pack()))[7:]
    assert store.free_pack(repo.repo_id, first) == 0
    assert services.quotas.owner_usage(OLIVIA, "olivia").bytes_stored == 0


def test_only_the_owner_or_an_admin_reads_the_usage() -> None:
    services = quota_services()
    services.repos.create(OLIVIA, "olivia", "songs", "public", False)
    services.repos.create(OLIVIA, "olivia", "secret", "private", False)
    services.repos.set_collaborator(
        OLIVIA, services.repos.by_slug(OLIVIA, "olivia", "songs").repo_id, "stan", "admin"
    )
    assert services.quotas.repository_usage(ADMIN, "olivia", "songs").name == "olivia/songs"
    assert services.quotas.owner_usage(ADMIN, "olivia").scope == "owner"
    cases = [
        (services.quotas.repository_usage, STRANGER, "songs", 403, "forbidden"),
        (services.quotas.repository_usage, STRANGER, "secret", 404, "not_found"),
        (services.quotas.repository_usage, ANONYMOUS, "songs", 401, "auth_required"),
    ]
    for call, caller, name, status, code in cases:
        error = refusal(call, caller, "olivia", name)
        assert (http_status(error), error.code) == (status, code), (caller, name)
    error = refusal(services.quotas.owner_usage, STRANGER, "olivia")
    assert (http_status(error), error.code) == (403, "forbidden")
    error = refusal(services.quotas.owner_usage, Caller("x", "sha256:" + "09" * 32), "Not A Handle")
    assert error.code == "invalid_handle"
