"""Mutated packs through the verification engine and through the real push path (presign, PUT to
the presigned URL, unpack-mpack): verified, or a coded 4xx that leaves nothing behind."""

from __future__ import annotations

import itertools

import pytest
from api.test_endpoints import identity
from hypothesis import given
from hypothesis import strategies as st

from muse_cloud_cli.signer import KeyFile
from muse_cloud_dev.provision import Provisioned

from .mutations import FAMILIES, base_history, base_pack, encode, nested, replaced
from .outcomes import (
    VERIFIED,
    assert_nothing_left,
    assert_refs_whole,
    coded_4xx,
    core_outcome,
    fresh_repo,
    push_over_http,
)
from .profile import attack_settings

HISTORY = base_history()
PACK = base_pack(HISTORY)
DATA = encode(PACK)


def test_the_base_pack_is_valid() -> None:
    assert core_outcome(DATA) == VERIFIED


@pytest.mark.parametrize("family", FAMILIES)
def test_engine_verifies_or_refuses_with_a_code(family: str) -> None:
    @attack_settings(40)
    @given(data=FAMILIES[family](PACK, DATA))
    def attack(data: bytes) -> None:
        core_outcome(data)

    attack()


# Deep nesting, one deterministic case per field: 1,000 levels, around both msgpack's nesting
# limit (1,024) and Python's recursion limit (1,000). The id fields (whose refusal once raised
# RecursionError while its message was built, RELIABILITY.md), then the value fields.
NESTED_IDS: list[tuple[str | int, ...]] = [
    ("mpack_version",),
    ("repo_id",),
    ("branch_heads", "main"),
    ("commits", 0, "commit_id"),
    ("commits", 1, "parent_commit_id"),
    ("commits", 0, "snapshot_id"),
    ("snapshots", 0, "snapshot_id"),
    ("snapshots", 1, "parent_snapshot_id"),
    ("snapshots", 0, "delta_remove"),
    ("objects", 0, "object_id"),
]
NESTED_VALUES: list[tuple[str | int, ...]] = [
    ("commits", 0, "message"),
    ("commits", 0, "metadata"),
    ("commits", 0, "structured_delta"),
    ("snapshots", 0, "delta_upsert"),
]
NESTED_FIELDS = NESTED_IDS + NESTED_VALUES


def _nested_case(path: tuple[str | int, ...]) -> bytes:
    return encode(replaced(PACK, path, nested(1000)))


@pytest.mark.parametrize("path", NESTED_FIELDS, ids=lambda p: ".".join(map(str, p)))
def test_deep_nesting_in_each_field_is_refused_with_a_code(path: tuple[str | int, ...]) -> None:
    assert core_outcome(_nested_case(path)) != VERIFIED


@pytest.fixture
def pusher(stack: Provisioned) -> KeyFile:
    return identity("mallory")


_repo_names = itertools.count()


def _push_and_judge(pusher: KeyFile, data: bytes, unpack: dict[str, object]) -> str:
    repo_id, slug = fresh_repo(pusher.handle, f"r{next(_repo_names)}")
    done = push_over_http(pusher, slug, data, unpack)
    if done.last.status == 200:
        assert_refs_whole(repo_id)
        return VERIFIED
    code = coded_4xx(done.last)
    assert_nothing_left(repo_id)
    return code


@attack_settings(40)
@given(
    data=st.sampled_from(sorted(FAMILIES)).flatmap(lambda name: FAMILIES[name](PACK, DATA)),
    name_the_branch=st.booleans(),
)
def test_push_path_verifies_or_refuses_with_a_code(
    pusher: KeyFile, data: bytes, name_the_branch: bool
) -> None:
    unpack: dict[str, object] = {}
    if name_the_branch:
        unpack = {"branch": "main", "head": HISTORY.order[2]}
    _push_and_judge(pusher, data, unpack)


def test_the_base_pack_pushes(pusher: KeyFile) -> None:
    assert _push_and_judge(pusher, DATA, {}) == VERIFIED


def _nested_pushes_not_refused(pusher: KeyFile, paths: list[tuple[str | int, ...]]) -> list[str]:
    wrong = []
    for path in paths:
        try:
            outcome = _push_and_judge(pusher, _nested_case(path), {})
        except AssertionError as failure:
            outcome = f"not a coded 4xx: {str(failure)[:100]}"
        else:
            if outcome != VERIFIED:
                continue
        wrong.append(f"{'.'.join(map(str, path))}: {outcome}")
    return wrong


def test_deep_nesting_over_http_is_a_coded_4xx(pusher: KeyFile) -> None:
    wrong = _nested_pushes_not_refused(pusher, NESTED_VALUES)
    assert not wrong, wrong


def test_deep_nesting_in_id_fields_over_http_is_a_coded_4xx(pusher: KeyFile) -> None:
    wrong = _nested_pushes_not_refused(pusher, NESTED_IDS)
    print(f"\nmutations[deep nesting over http]: {len(wrong)} of {len(NESTED_IDS)} not a coded 4xx")
    assert not wrong, wrong
