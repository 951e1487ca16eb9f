"""Values nested a thousand levels deep (and past what msgpack decodes) in every id field of a
real pack: a coded refusal naming the field, never a RecursionError while the error is built."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from muse_core.errors import MAX_ITEM_CHARS, MuseError, describe
from muse_core.paths import validate_branch_name
from muse_core.verify import EmptyReceiver, verify_mpack

from .conftest import encode, refuse
from .test_bad_input import _set

Pack = dict[str, Any]
# Replaced, in the encoded pack, by the raw bytes of the nested value.
_SENTINEL = "\x00nested-value-goes-here\x00"
DEPTHS = (1_000, 100_000)


def nested_bytes(depth: int) -> bytes:
    """``depth`` one-element arrays around nil, written directly: msgpack's packer stops at 512."""
    return b"\x91" * depth + b"\xc0"


def _at(*path: str | int) -> Callable[[Pack], None]:
    return _set(list(path), _SENTINEL)


def _in_list(*path: str | int) -> Callable[[Pack], None]:
    def place(pack: Pack) -> None:
        target: Any = pack
        for step in path:
            target = target[step]
        target[:] = [_SENTINEL]

    return place


def _first_upsert(pack: Pack) -> None:
    upsert = pack["snapshots"][0]["delta_upsert"]
    upsert[next(iter(upsert))] = _SENTINEL


# Each id field (and a few more) of a pack, with the code that refuses a nested value there.
FIELDS: dict[str, tuple[Callable[[Pack], None], str]] = {
    "mpack_version": (_at("mpack_version"), "unsupported_version"),
    "repo_id": (_at("repo_id"), "invalid_type"),
    "head": (_at("branch_heads", "main"), "invalid_id"),
    "commit_id": (_at("commits", 0, "commit_id"), "invalid_id"),
    "parent_commit_id": (_at("commits", 1, "parent_commit_id"), "invalid_id"),
    "commit snapshot_id": (_at("commits", 0, "snapshot_id"), "invalid_id"),
    "snapshot_id": (_at("snapshots", 0, "snapshot_id"), "invalid_id"),
    "parent_snapshot_id": (_at("snapshots", 1, "parent_snapshot_id"), "invalid_id"),
    "object_id": (_at("objects", 0, "object_id"), "invalid_id"),
    "delta_remove": (_in_list("snapshots", 1, "delta_remove"), "invalid_path"),
    "delta_upsert value": (_first_upsert, "invalid_type"),
    "commit metadata": (_at("commits", 0, "metadata"), "invalid_type"),
    "unknown commit field": (_at("commits", 0, "extra"), "invalid_type"),
}


def nested_pack(pack: Pack, field: str, depth: int) -> bytes:
    """The real pack's bytes with ``field`` holding ``depth`` levels of nesting."""
    mutated = copy.deepcopy(pack)
    FIELDS[field][0](mutated)
    encoded = encode(mutated)
    marker = msgpack.packb(_SENTINEL)
    assert encoded.count(marker) == 1
    return encoded.replace(marker, nested_bytes(depth))


@pytest.mark.parametrize("field", sorted(FIELDS))
@pytest.mark.parametrize("depth", DEPTHS)
def test_deep_nesting_in_a_pack_field_is_a_coded_refusal(
    small_repo: dict[str, Any], field: str, depth: int
) -> None:
    data = nested_pack(small_repo["pack"], field, depth)
    # Decodable depths reach the field's own rule; deeper ones stop in the decoder.
    code = FIELDS[field][1] if depth < 1024 else "malformed_mpack"
    error = refuse(data, code)
    assert error.item is not None and len(error.item) <= MAX_ITEM_CHARS
    if depth < 1024 and code != "invalid_type":
        assert error.item.startswith("[[[[") and error.item.endswith("…")


def test_the_unmutated_small_pack_still_verifies(small_repo: dict[str, Any]) -> None:
    assert len(verify_mpack(small_repo["data"], EmptyReceiver()).commits) == 4


def test_nesting_past_the_decoder_names_where_it_was(small_repo: dict[str, Any]) -> None:
    error = refuse(nested_pack(small_repo["pack"], "commit_id", 100_000), "malformed_mpack")
    assert error.item == "commits[0]"
    top = b"\x81" + nested_bytes(100_000) + b"\xc0"
    assert refuse(top, "malformed_mpack").item == "mpack"


def test_a_nested_top_level_key_is_named_by_its_beginning() -> None:
    error = refuse(b"\x81" + nested_bytes(1_000) + b"\xc0", "invalid_type")
    assert error.item is not None and error.item.startswith("[[[[")


def _deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def test_describe_is_repr_for_small_values() -> None:
    values: list[object] = [
        None,
        True,
        -7,
        1.5,
        "it's",
        "\udc80",
        b"\x00bin",
        [1, [2, (3,)], {"a": [None, ()]}],
        {},
    ]
    for value in values:
        assert describe(value) == repr(value)


def test_describe_is_bounded_whatever_it_is_given() -> None:
    deep = describe(_deep_list(100_000))
    assert len(deep) == MAX_ITEM_CHARS and deep == "[" * (MAX_ITEM_CHARS - 1) + "…"
    wide = describe(list(range(1_000_000)))
    assert len(wide) == MAX_ITEM_CHARS and wide.startswith("[0, 1, 2")
    assert len(describe("x" * 1_000_000)) == MAX_ITEM_CHARS
    assert len(describe({str(i): i for i in range(100_000)})) == MAX_ITEM_CHARS
    # repr would refuse an integer over 4,300 digits.
    assert describe(10**5000) == f"<int of {(10**5000).bit_length()} bits>"
    assert describe(object()) == "<object>"
    assert describe([1, 2, 3], limit=5) == "[1, …"


def test_a_branch_name_that_is_not_utf8_is_refused() -> None:
    for name in ("\udc80", "main\ud800", "feature/\udfff/x"):
        with pytest.raises(MuseError) as caught:
            validate_branch_name(name)
        assert caught.value.code == "invalid_branch_name"
        assert caught.value.item == repr(name)
    with pytest.raises(MuseError) as deep:
        validate_branch_name(_deep_list(1_000))
    assert deep.value.code == "invalid_branch_name"
    assert validate_branch_name("feature/étude") == "feature/étude"
