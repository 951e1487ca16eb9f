"""Uploads in parts on in-memory stores: how a pack is cut, what presign and the parts route
answer as parts arrive (and after an interruption), what completing checks, and that ingestion
verifies the joined pack's hash as it verifies a pack sent whole."""

from __future__ import annotations

import os

import pytest
from histories import History

from muse_cloud.api.statuses import http_status
from muse_cloud.composition import Services
from muse_cloud.config import Settings
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.repos import Repo
from muse_cloud.domain.uploads import (
    MAX_OBJECT_BYTES,
    MAX_PART_BYTES,
    MAX_PARTS,
    MAX_SINGLE_PUT_BYTES,
    MIB,
    MIN_PART_BYTES,
    PartLayout,
)
from muse_cloud.services.push import PartsUpload, PresignedPush
from muse_cloud.storage.layout import STATE_TAG, UploadKey
from muse_cloud.storage.memory import MemoryBucket
from muse_core.mpack import encode_mpack, mpack_key

from .conftest import OLIVIA

PART = 5 * MIB


@pytest.fixture
def services() -> Services:
    settings = Settings(
        table_name="memory",
        bucket_name="memory",
        event_bus_name="memory",
        multipart_threshold_bytes=PART,
        multipart_part_bytes=PART,
    )
    return Services.in_memory(settings)


@pytest.fixture
def repo(services: Services) -> Repo:
    return services.repos.create(OLIVIA, "olivia", "songs", "public", False)


def big_pack() -> tuple[bytes, str]:
    """About 12 MiB of incompressible objects: three parts of 5 MiB, the last one shorter."""
    history = History()
    history.add({f"takes/{n}.wav": os.urandom(4 * MIB) for n in range(3)})
    data = encode_mpack(history.pack())
    return data, history.head


def presign(services: Services, data: bytes, head: str, multipart: bool = True) -> PartsUpload:
    presigned = services.push.presign(
        OLIVIA, "olivia", "songs", mpack_key(data), len(data), "main", head, False, multipart
    )
    assert presigned.parts is not None and presigned.upload_url is None
    return presigned.parts


def put_parts(services: Services, parts: PartsUpload, data: bytes, numbers: list[int]) -> None:
    """What the client's PUTs to the part URLs do."""
    bucket = services.stores.bucket
    assert isinstance(bucket, MemoryBucket)
    size = parts.layout.part_size
    for n in numbers:
        assert f"partNumber={n}&" in parts.part_urls[n]
        bucket.put_part(parts.upload_id, n, data[(n - 1) * size : n * size])


def refused(call: object, *args: object) -> tuple[int, str, str | None]:
    with pytest.raises(ServiceError) as caught:
        call(*args)  # type: ignore[operator]
    return http_status(caught.value), caught.value.code, caught.value.item


def test_parts_cover_the_pack_within_s3s_limits() -> None:
    for size in (1, PART, PART + 1, 10 * 1024 * MIB, MAX_SINGLE_PUT_BYTES + 1, MAX_OBJECT_BYTES):
        layout = PartLayout.for_size(size, 16 * MIB)
        lengths = [layout.length(n) for n in range(1, layout.count + 1)]
        assert sum(lengths) == size and layout.count <= MAX_PARTS
        assert all(n == layout.part_size for n in lengths[:-1]) and lengths[-1] > 0
        assert MIN_PART_BYTES <= layout.part_size <= MAX_PART_BYTES
    # Parts grow past the preferred size only where 10,000 would not hold the pack.
    assert PartLayout.for_size(MAX_OBJECT_BYTES, 16 * MIB).part_size == 525 * MIB
    assert PartLayout.for_size(100 * 1024 * MIB, 16 * MIB).part_size == 16 * MIB
    assert PartLayout.for_size(100 * 1024 * MIB, 1).part_size == 11 * MIB
    assert PartLayout.for_size(10 * 1024 * MIB, 1).part_size == MIN_PART_BYTES


def test_a_pack_in_parts_resumed_completed_and_ingested(services: Services, repo: Repo) -> None:
    data, head = big_pack()
    parts = presign(services, data, head)
    assert (parts.layout.part_size, parts.layout.count) == (PART, 3)
    assert parts.uploaded == [] and sorted(parts.part_urls) == [1, 2, 3]
    put_parts(services, parts, data, [1, 3])
    # Interrupted: presigning again finds the same upload, with what it holds.
    resumed = presign(services, data, head)
    assert resumed.upload_id == parts.upload_id
    assert [p.part_number for p in resumed.uploaded] == [1, 3]
    assert sorted(resumed.part_urls) == [2]
    assert refused(
        services.push.complete_upload, OLIVIA, "olivia", "songs", mpack_key(data), parts.upload_id
    ) == (409, "upload_incomplete", "2")
    put_parts(services, resumed, data, [2])
    now = services.push.upload_parts(OLIVIA, "olivia", "songs", mpack_key(data), parts.upload_id)
    assert len(now.uploaded) == 3 and now.part_urls == {}

    record = services.push.complete_upload(
        OLIVIA, "olivia", "songs", mpack_key(data), parts.upload_id
    )
    key = UploadKey(repo.repo_id, mpack_key(data).removeprefix("sha256:"))
    bucket = services.stores.bucket
    assert isinstance(bucket, MemoryBucket)
    assert bucket.get(key.s3_key) == data and bucket.tags_of(key.s3_key) == {STATE_TAG: "incoming"}
    # Completing again (an answer lost on the way) finds the pack in place.
    again = services.push.complete_upload(
        OLIVIA, "olivia", "songs", mpack_key(data), parts.upload_id
    )
    assert again.push_id == record.push_id
    ingested = services.push.unpack(OLIVIA, "olivia", "songs", mpack_key(data), "main", head, False)
    assert ingested.state == "ok" and ingested.result is not None
    assert ingested.result.bytes == len(data)
    assert services.stores.refs.heads(repo.repo_id) == {"main": head}


def test_a_part_of_the_wrong_length_is_asked_for_again(services: Services, repo: Repo) -> None:
    data, head = big_pack()
    parts = presign(services, data, head)
    put_parts(services, parts, data, [1, 2, 3])
    bucket = services.stores.bucket
    assert isinstance(bucket, MemoryBucket)
    bucket.put_part(parts.upload_id, 2, data[PART : PART + 100])
    state = services.push.upload_parts(OLIVIA, "olivia", "songs", mpack_key(data), parts.upload_id)
    assert [p.part_number for p in state.uploaded] == [1, 3] and sorted(state.part_urls) == [2]
    status, code, item = refused(
        services.push.complete_upload, OLIVIA, "olivia", "songs", mpack_key(data), parts.upload_id
    )
    assert (status, code, item) == (409, "upload_incomplete", "2")


def test_joined_bytes_that_are_not_the_pack_are_refused_by_ingestion(
    services: Services, repo: Repo
) -> None:
    data, head = big_pack()
    parts = presign(services, data, head)
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    put_parts(services, parts, tampered, [1, 2, 3])
    services.push.complete_upload(OLIVIA, "olivia", "songs", mpack_key(data), parts.upload_id)
    status, code, _ = refused(
        services.push.unpack, OLIVIA, "olivia", "songs", mpack_key(data), "main", head, False
    )
    assert (status, code) == (422, "mpack_key_mismatch")
    assert services.stores.refs.heads(repo.repo_id) == {}


def test_upload_ids_are_the_packs_own(services: Services, repo: Repo) -> None:
    data, head = big_pack()
    parts = presign(services, data, head)
    key = mpack_key(data)
    for upload_id in ("not-an-upload", presign(services, big_pack()[0], head).upload_id):
        assert refused(services.push.upload_parts, OLIVIA, "olivia", "songs", key, upload_id) == (
            404,
            "upload_not_found",
            upload_id,
        )
        assert refused(
            services.push.complete_upload, OLIVIA, "olivia", "songs", key, upload_id
        ) == (404, "upload_not_found", upload_id)
    never = mpack_key(b"never presigned")
    assert refused(
        services.push.upload_parts, OLIVIA, "olivia", "songs", never, parts.upload_id
    ) == (404, "upload_not_found", never)


def test_which_packs_go_up_in_parts(services: Services, repo: Repo) -> None:
    def presigned(pack: bytes, size: int, multipart: bool) -> PresignedPush:
        return services.push.presign(
            OLIVIA, "olivia", "songs", mpack_key(pack), size, "main", None, False, multipart
        )

    small = encode_mpack(_small_pack())
    whole = presigned(small, len(small), True)
    assert whole.parts is None and whole.upload_url is not None
    data, _ = big_pack()
    # A client that cannot send parts gets one PUT, up to S3's 5 GiB for one.
    single = presigned(data, len(data), False)
    assert single.parts is None and single.headers["Content-Length"] == str(len(data))
    over = MAX_SINGLE_PUT_BYTES + 1
    assert refused(presigned, data, over, False) == (413, "limit_exceeded", str(over))
    largest = presigned(data, MAX_OBJECT_BYTES, True)
    assert largest.parts is not None and largest.parts.layout.count <= MAX_PARTS
    over = MAX_OBJECT_BYTES + 1
    assert refused(presigned, data, over, True) == (413, "limit_exceeded", str(over))


def _small_pack() -> dict[str, object]:
    history = History()
    history.add({"a.mid": b"a"})
    return history.pack()
