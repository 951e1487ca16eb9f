"""parse_mpack: streaming decode, object sink, and where each object's bytes sit in the pack."""

from __future__ import annotations

import copy
import io
import tracemalloc
from typing import Any

import msgpack
import pytest

from muse_core.errors import MuseError
from muse_core.ids import blob_id
from muse_core.limits import Limits
from muse_core.mpack import decode_mpack, encode_mpack, mpack_key, parse_mpack
from muse_core.verify import EmptyReceiver, verify_mpack

from .conftest import encode


class TrickleStream(io.RawIOBase):
    """A stream that hands out at most ``step`` bytes per read, like a slow network body."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._pos = 0
        self._step = step
        self.reads = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        if size < 0:
            size = len(self._data)
        chunk = self._data[self._pos : self._pos + min(size, self._step)]
        self._pos += len(chunk)
        return chunk


def _objects_pack(count: int = 40, size: int = 512) -> tuple[dict[str, Any], list[bytes]]:
    blobs = [bytes([i % 256]) * size for i in range(count)] + [b""]
    pack: dict[str, Any] = {
        "mpack_version": 1,
        "repo_id": None,
        "branch_heads": {},
        "commits": [],
        "snapshots": [],
        "objects": [{"object_id": blob_id(b), "content": b} for b in blobs],
    }
    return pack, blobs


def test_object_sink_streams_every_object_in_order(small_repo: dict[str, Any]) -> None:
    data: bytes = small_repo["data"]
    received: list[tuple[str, bytes]] = []
    parsed = parse_mpack(data, object_sink=lambda oid, content: received.append((oid, content)))
    expected = [(o["object_id"], o["content"]) for o in small_repo["pack"]["objects"]]
    assert received == expected
    assert all(blob_id(content) == oid for oid, content in received)
    assert b"" in [content for _, content in received]
    assert parsed.key == mpack_key(data)
    assert parsed.size == len(data)
    # Objects are not kept in the parsed fields: only their positions are.
    assert "objects" not in parsed.fields
    assert set(parsed.fields) == {
        "mpack_version",
        "repo_id",
        "branch_heads",
        "commits",
        "snapshots",
    }


def test_object_entries_point_at_the_exact_content_bytes(small_repo: dict[str, Any]) -> None:
    data: bytes = small_repo["data"]
    parsed = parse_mpack(data)
    expected = small_repo["pack"]["objects"]
    assert len(parsed.objects) == len(expected)
    for entry, obj in zip(parsed.objects, expected, strict=True):
        assert entry.object_id == obj["object_id"]
        assert entry.length == len(obj["content"])
        assert data[entry.offset : entry.offset + entry.length] == obj["content"]
        assert entry.digest == blob_id(obj["content"])
    # The same positions come back from verification, ready to serve bytes from the pack.
    verified = verify_mpack(data, EmptyReceiver())
    assert verified.objects == parsed.objects


def test_offsets_with_extra_keys_and_content_first() -> None:
    blob = b"\x00" * 300 + b"tail"
    oid = blob_id(blob)
    entry_first = {"content": blob, "extra": b"zzz" * 10, "object_id": oid}
    pack = {"mpack_version": 1, "objects": [entry_first, {"object_id": oid, "content": blob}]}
    data = encode(pack)
    parsed = parse_mpack(data)
    for entry in parsed.objects:
        assert data[entry.offset : entry.offset + entry.length] == blob
    # The same object twice is one object for the receiver.
    assert len(verify_mpack(data, EmptyReceiver()).objects) == 1


def test_sink_is_not_fed_objects_whose_content_mismatches() -> None:
    pack, blobs = _objects_pack(3)
    pack["objects"][1]["content"] = b"tampered"
    received: list[str] = []
    parse_mpack(encode(pack), object_sink=lambda oid, content: received.append(oid))
    assert received == [blob_id(blobs[0]), blob_id(blobs[2]), blob_id(b"")]
    with pytest.raises(MuseError) as info:
        verify_mpack(encode(pack), EmptyReceiver())
    assert info.value.code == "object_hash_mismatch"
    assert info.value.item == blob_id(blobs[1])


@pytest.mark.parametrize("step", [1, 7, 4096])
def test_parse_from_a_stream_matches_bytes(step: int) -> None:
    pack, blobs = _objects_pack()
    data = encode_mpack(pack)
    stream = TrickleStream(data, step)
    received: list[bytes] = []
    parsed = parse_mpack(stream, object_sink=lambda oid, content: received.append(content))  # type: ignore[arg-type]
    assert received == blobs
    assert parsed.key == mpack_key(data) and parsed.size == len(data)
    assert parsed.objects == parse_mpack(data).objects
    assert stream.reads > 1


def test_streaming_keeps_only_one_object_buffered() -> None:
    """A pack far larger than the unpacker's buffer still parses: blobs are consumed one by one."""
    pack, blobs = _objects_pack(count=200, size=512)
    data = encode_mpack(pack)
    limits = Limits(max_object_bytes=600, max_string_bytes=128)
    assert len(data) > 100 * (limits.max_object_bytes + limits.max_string_bytes)
    parsed = parse_mpack(io.BytesIO(data), limits)
    assert len(parsed.objects) == len(blobs)
    assert all(
        data[e.offset : e.offset + e.length] == b
        for e, b in zip(parsed.objects, blobs, strict=True)
    )


def test_verify_accepts_a_stream(small_repo: dict[str, Any]) -> None:
    data: bytes = small_repo["data"]
    verified = verify_mpack(io.BytesIO(data), EmptyReceiver(), expected_key=mpack_key(data))
    assert verified.key == mpack_key(data)
    assert len(verified.commits) == 4


def test_decode_round_trip(small_repo: dict[str, Any]) -> None:
    data: bytes = small_repo["data"]
    assert decode_mpack(data) == small_repo["pack"]
    assert encode_mpack(decode_mpack(data)) == data
    assert msgpack.unpackb(data, raw=False) == small_repo["pack"]


def test_parse_reports_the_key_of_a_pack_with_every_top_level_order(
    small_repo: dict[str, Any],
) -> None:
    pack = small_repo["pack"]
    reordered = {k: pack[k] for k in reversed(list(pack))}  # objects first
    data = encode(reordered)
    verified = verify_mpack(data, EmptyReceiver())
    assert verified.key == mpack_key(data)
    assert [data[e.offset : e.offset + e.length] for e in verified.objects] == [
        o["content"] for o in pack["objects"]
    ]


# --- what a hostile pack can make the decoder build ------------------------------------------


def _distinct_strings(count: int) -> list[str]:
    return [f"{i:06x}" for i in range(count)]


def test_unknown_top_level_keys_are_skipped_not_built(small_repo: dict[str, Any]) -> None:
    junk = [_distinct_strings(100_000) for _ in range(4)]  # ~2.8 MB of pack, ~30 MB if built
    data = encode({**small_repo["pack"], "junk": junk, "more": {"x": junk[0]}})
    tracemalloc.start()
    try:
        parsed = parse_mpack(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert set(parsed.fields) == {
        "mpack_version",
        "repo_id",
        "branch_heads",
        "commits",
        "snapshots",
    }
    assert peak < 6 * 1024 * 1024  # about the unpacker's buffers, not the skipped values
    assert verify_mpack(data, EmptyReceiver()).key == mpack_key(data)


def test_commit_count_is_refused_from_the_array_header(small_repo: dict[str, Any]) -> None:
    """The header alone is refused: no element is decoded (here, none even follows)."""
    data = b"\x81" + msgpack.packb("commits") + b"\xdd" + (1_000_000).to_bytes(4, "big")
    for limits in (Limits(), Limits(max_commits=3)):
        with pytest.raises(MuseError) as info:
            parse_mpack(data, limits)
        assert (info.value.code, info.value.item) == ("limit_exceeded", "commits")


@pytest.mark.parametrize(
    ("where", "junk"),
    [
        ("commits", [[[] for _ in range(100)] for _ in range(20)]),  # empty arrays: 1 byte each
        ("commits", [_distinct_strings(100) for _ in range(20)]),  # 7-byte strings
        ("snapshots", [[{} for _ in range(100)] for _ in range(20)]),
    ],
)
def test_decoded_items_must_be_paid_for_by_pack_bytes(
    small_repo: dict[str, Any], where: str, junk: list[Any]
) -> None:
    limits = Limits(max_manifest_entries=100, pack_bytes_per_decoded_item=16)
    assert verify_mpack(small_repo["data"], EmptyReceiver(), limits=limits).commits
    pack = copy.deepcopy(small_repo["pack"])
    pack[where][1]["future"] = junk
    with pytest.raises(MuseError) as info:
        parse_mpack(encode(pack), limits)
    assert (info.value.code, info.value.item) == ("limit_exceeded", f"{where}[1]")


def test_decoded_items_paid_for_by_their_bytes_pass(small_repo: dict[str, Any]) -> None:
    limits = Limits(max_manifest_entries=100, pack_bytes_per_decoded_item=16)
    pack = copy.deepcopy(small_repo["pack"])
    pack["commits"][1]["future"] = [["x" * 40] * 100 for _ in range(20)]  # 41 bytes per item
    assert parse_mpack(encode(pack), limits).fields["commits"][1]["future"][19][99] == "x" * 40


def test_object_contents_do_not_pay_for_decoded_items(small_repo: dict[str, Any]) -> None:
    limits = Limits(max_manifest_entries=100, pack_bytes_per_decoded_item=16)
    pack = copy.deepcopy(small_repo["pack"])
    big = b"\x00" * 200_000
    pack = {"objects": [{"object_id": blob_id(big), "content": big}], **pack}
    pack["commits"][1]["future"] = [[[] for _ in range(100)] for _ in range(20)]
    with pytest.raises(MuseError) as info:
        parse_mpack(encode(pack), limits)
    assert (info.value.code, info.value.item) == ("limit_exceeded", "commits[1]")
