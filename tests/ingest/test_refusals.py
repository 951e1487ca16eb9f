"""Every class of bad upload, through the event path: the push record says why (one stable code),
refs, commits, snapshots and the object index stay as they were, and the event is acknowledged
(a refusal is final, so retrying it would only fail again)."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest

from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import answered, stores
from muse_core.ids import blob_id
from muse_core.mpack import build_mpack, decode_mpack, encode_mpack, mpack_key

from .test_event_path import event_source, history_items, queue_depth, skip_test_event, upload

SMALL = Workload(commits=3, files=6, changed_per_commit=2, blob_bytes=64)
Pack = dict[str, Any]


@dataclass(frozen=True)
class Histories:
    base_head: str
    base_data: bytes  # the whole base history, pushed first in every test
    next_pack: Pack  # two more commits on main, against the base head
    next_head: str
    divergent_pack: Pack  # two other commits on main, also against the base head
    divergent_head: str


@pytest.fixture(scope="module")
def histories(tmp_path_factory: pytest.TempPathFactory) -> Histories:
    base = tmp_path_factory.mktemp("base")
    base_head = generate_history(base, SMALL)[-1]
    forward = tmp_path_factory.mktemp("forward") / "repo"
    divergent = tmp_path_factory.mktemp("divergent") / "repo"
    shutil.copytree(base, forward)
    shutil.copytree(base, divergent)
    next_head = generate_history(forward, Workload(2, 6, 2, 64), start=3)[-1]
    other_head = generate_history(divergent, Workload(2, 6, 3, 64), start=3)[-1]
    assert other_head != next_head
    return Histories(
        base_head=base_head,
        base_data=encode_mpack(build_mpack(base, ["main"])),
        next_pack=build_mpack(forward, ["main"], have=[base_head]),
        next_head=next_head,
        divergent_pack=build_mpack(divergent, ["main"], have=[base_head]),
        divergent_head=other_head,
    )


def test_the_unmutated_packs_are_delta_encoded_against_the_base(histories: Histories) -> None:
    for pack in (histories.next_pack, histories.divergent_pack):
        assert len(pack["commits"]) == len(pack["snapshots"]) == 2
        assert all(s["parent_snapshot_id"] for s in pack["snapshots"])
        assert pack["objects"]


# Each case: (the bytes to upload, the key to upload them under or None for their own key).
Case = Callable[[Histories], tuple[bytes, str | None]]


def mutated(change: Callable[[Pack], object]) -> Case:
    def case(h: Histories) -> tuple[bytes, str | None]:
        pack = copy.deepcopy(h.next_pack)
        change(pack)
        return encode_mpack(pack), None

    return case


def _other_object(pack: Pack, not_this: str) -> str:
    return next(str(o["object_id"]) for o in pack["objects"] if o["object_id"] != not_this)


def _swap_upsert_object(pack: Pack) -> None:
    upsert = pack["snapshots"][-1]["delta_upsert"]
    path = next(iter(upsert))
    upsert[path] = _other_object(pack, upsert[path])


def _bad_path(pack: Pack) -> None:
    pack["snapshots"][0]["delta_upsert"]["tracks/../escape.mid"] = pack["objects"][0]["object_id"]


def _tamper_object(pack: Pack) -> None:
    pack["objects"][0]["content"] = b"tampered" + pack["objects"][0]["content"]


def _drop_referenced_object(pack: Pack) -> None:
    pack["objects"].pop()


def _drop_first_commit(pack: Pack) -> None:
    pack["commits"].pop(0)


def _drop_last_snapshot(pack: Pack) -> None:
    pack["snapshots"].pop()


def _unknown_base(pack: Pack) -> None:
    pack["snapshots"][0]["parent_snapshot_id"] = blob_id(b"a snapshot nobody has")


def _rewrite_message(pack: Pack) -> None:
    pack["commits"][-1]["message"] = "history, rewritten"


def _bad_branch(pack: Pack) -> None:
    pack["branch_heads"] = {"main..evil": pack["branch_heads"]["main"]}


def _version_two(pack: Pack) -> None:
    pack["mpack_version"] = 2


def _under_another_key(h: Histories) -> tuple[bytes, str | None]:
    other = mpack_key(encode_mpack(h.divergent_pack)).removeprefix("sha256:")
    return encode_mpack(h.next_pack), other


def _truncated(h: Histories) -> tuple[bytes, str | None]:
    return encode_mpack(h.next_pack)[:-7], None


def _not_msgpack(h: Histories) -> tuple[bytes, str | None]:
    return b'{"mpack_version": 1, "this": "is JSON"}', None


def _trailing_garbage(h: Histories) -> tuple[bytes, str | None]:
    return encode_mpack(h.next_pack) + b"\xc1", None


def _a_list(h: Histories) -> tuple[bytes, str | None]:
    return msgpack.packb([1, 2, 3]), None


CASES: list[tuple[str, Case, str]] = [
    ("bytes-under-another-packs-key", _under_another_key, "mpack_key_mismatch"),
    ("truncated", _truncated, "malformed_mpack"),
    ("not-msgpack", _not_msgpack, "malformed_mpack"),
    ("not-a-map", _a_list, "malformed_mpack"),
    ("trailing-bytes", _trailing_garbage, "malformed_mpack"),
    ("unsupported-version", mutated(_version_two), "unsupported_version"),
    ("object-hash-mismatch", mutated(_tamper_object), "object_hash_mismatch"),
    ("snapshot-hash-mismatch", mutated(_swap_upsert_object), "snapshot_hash_mismatch"),
    ("commit-id-mismatch", mutated(_rewrite_message), "commit_id_mismatch"),
    ("dangling-object", mutated(_drop_referenced_object), "dangling_object"),
    ("missing-parent", mutated(_drop_first_commit), "missing_parent"),
    ("missing-snapshot", mutated(_drop_last_snapshot), "missing_snapshot"),
    ("unknown-delta-base", mutated(_unknown_base), "unknown_delta_base"),
    ("bad-path", mutated(_bad_path), "invalid_path"),
    ("bad-branch-name", mutated(_bad_branch), "invalid_branch_name"),
]


@dataclass
class Pushed:
    repo_id: str
    heads: dict[str, str]
    items: dict[tuple[str, str], Any]


def push_base(stack: Provisioned, histories: Histories, name: str = "songs") -> Pushed:
    repo = stores().repos.create("alice", name, "public")
    skip_test_event(stack)
    upload(stack, repo.repo_id, histories.base_data)
    assert event_source(stack).drain() == (1, 0)
    heads = stores().refs.heads(repo.repo_id)
    assert heads == {"main": histories.base_head}
    return Pushed(repo.repo_id, heads, history_items(repo.repo_id))


def assert_refused(stack: Provisioned, repo: Pushed, push_id: str, code: str) -> dict[str, Any]:
    """The push failed with ``code`` and left the repository exactly as it was."""
    record = stores().pushes.get(repo.repo_id, push_id)
    assert record is not None
    assert record.state == "failed", record
    assert record.error is not None and answered(record)["error"]["code"] == code, record.error
    assert answered(record)["error"]["message"] and answered(record)["error"]["item"]
    assert record.result is None
    assert stores().refs.heads(repo.repo_id) == repo.heads
    assert history_items(repo.repo_id) == repo.items
    # Acknowledged: nothing left in flight, nothing sent to the dead-letter queue.
    assert queue_depth(stack.queue_url) == 0
    assert queue_depth(stack.dead_letter_queue_url) == 0
    return dict(answered(record)["error"])


@pytest.mark.parametrize(("make", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_upload_is_refused_whole(
    stack: Provisioned, histories: Histories, make: Case, code: str
) -> None:
    repo = push_base(stack, histories)
    data, mpack_hex = make(histories)

    key = upload(stack, repo.repo_id, data, mpack_hex=mpack_hex)
    assert event_source(stack).drain() == (1, 0)  # handled and acknowledged, not retried

    assert_refused(stack, repo, key.mpack_hex, code)


def test_key_mismatch_names_the_key(stack: Provisioned, histories: Histories) -> None:
    repo = push_base(stack, histories)
    data, other = _under_another_key(histories)
    key = upload(stack, repo.repo_id, data, mpack_hex=other)
    assert event_source(stack).drain() == (1, 0)
    error = assert_refused(stack, repo, key.mpack_hex, "mpack_key_mismatch")
    assert error["item"] == f"sha256:{other}"
    assert mpack_key(data) in error["message"]


def test_divergent_history_is_not_a_fast_forward(stack: Provisioned, histories: Histories) -> None:
    repo = push_base(stack, histories)
    ahead = upload(stack, repo.repo_id, encode_mpack(histories.next_pack))
    assert event_source(stack).drain() == (1, 0)
    ok = stores().pushes.get(repo.repo_id, ahead.mpack_hex)
    assert ok is not None and ok.state == "ok"
    assert answered(ok)["previous_head"] == histories.base_head
    moved = Pushed(repo.repo_id, stores().refs.heads(repo.repo_id), history_items(repo.repo_id))
    assert moved.heads == {"main": histories.next_head}

    # Built on the base head too, but main has moved on: refused before anything is written.
    key = upload(stack, repo.repo_id, encode_mpack(histories.divergent_pack))
    assert event_source(stack).drain() == (1, 0)

    error = assert_refused(stack, moved, key.mpack_hex, "non_fast_forward")
    assert error["item"] == "main"
    assert stores().refs.get(repo.repo_id, "main") == histories.next_head


def test_another_repositorys_object_ids_grant_nothing(
    stack: Provisioned, histories: Histories
) -> None:
    first = push_base(stack, histories, "first")
    first_objects = {o["object_id"] for o in decode_mpack(histories.base_data)["objects"]}
    assert first_objects and stores().pack_index.known(first.repo_id, first_objects) == (
        first_objects
    )

    # The second repository's pack names the first one's objects without carrying their bytes.
    second_id = stores().repos.create("mallory", "copycat", "public").repo_id
    second = Pushed(second_id, {}, history_items(second_id))
    assert second.items == {}
    pack = msgpack.unpackb(histories.base_data, raw=False)
    pack["objects"] = []
    key = upload(stack, second_id, encode_mpack(pack))
    assert event_source(stack).drain() == (1, 0)

    error = assert_refused(stack, second, key.mpack_hex, "dangling_object")
    assert error["item"] in first_objects
    # The first repository is untouched as well.
    assert stores().refs.heads(first.repo_id) == first.heads
    assert history_items(first.repo_id) == first.items
