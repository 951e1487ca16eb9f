"""Every refusal code of the verification engine, on real msgpack bytes.

Each bad pack is a valid small pack (root, child, side branch and merge) mutated in one place.
``refuse`` asserts the exact ``MuseError.code``, that ``.item`` names the offending item, and
that nothing came back for writing.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

from muse_cloud_cli.workload import Workload, generate_history
from muse_core.delta import apply_delta
from muse_core.errors import MuseError
from muse_core.ids import blob_id, require_id, require_mpack_key
from muse_core.limits import Limits
from muse_core.mpack import build_mpack, mpack_key
from muse_core.paths import validate_branch_name, validate_manifest_path
from muse_core.refs import write_branch_ref
from muse_core.repo import init_repo
from muse_core.snapshot import compute_commit_id
from muse_core.verify import MAX_JSON_DEPTH, EmptyReceiver, verify_mpack

from .conftest import MemoryReceiver, commit_tree, encode, refuse

Pack = dict[str, Any]
HI = blob_id(b"hi")
README = blob_id(b"# readme\n")
UNKNOWN = blob_id(b"nobody has this")
T1 = "2026-03-16T12:00:00+00:00"
T2 = "2026-03-16T12:01:00+00:00"


def mutate(small_repo: dict[str, Any], change: Callable[[Pack], object]) -> bytes:
    pack: Pack = copy.deepcopy(small_repo["pack"])
    change(pack)
    return encode(pack)


def test_the_unmutated_pack_verifies(small_repo: dict[str, Any]) -> None:
    verified = verify_mpack(small_repo["data"], EmptyReceiver())
    assert len(verified.commits) == 4 and len(verified.snapshots) == 4
    assert len(verified.objects) == 6


# --- malformed_mpack ---------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [1, 7, 100, -1])
def test_malformed_truncated(small_repo: dict[str, Any], cut: int) -> None:
    data: bytes = small_repo["data"]
    refuse(data[:cut] if cut > 0 else data[:-1], "malformed_mpack", "mpack")


def test_malformed_empty_bytes() -> None:
    refuse(b"", "malformed_mpack", "mpack")


@pytest.mark.parametrize(
    "data",
    [
        b"not a pack at all",
        b'{"mpack_version": 1}',
        b"PK\x03\x04\x14\x00\x00\x00",
        b"\xc1\xc1\xc1",
        msgpack.packb([1, 2, 3]),
        msgpack.packb("mpack"),
    ],
)
def test_malformed_not_msgpack_map(data: bytes) -> None:
    refuse(data, "malformed_mpack", "mpack")


@pytest.mark.parametrize("extra", [b"\x00", b"\xc4", b"\x92\x01", b"\xc1", b"garbage"])
def test_malformed_trailing_bytes(small_repo: dict[str, Any], extra: bytes) -> None:
    refuse(small_repo["data"] + extra, "malformed_mpack", "mpack")


def test_malformed_two_packs_back_to_back(small_repo: dict[str, Any]) -> None:
    refuse(small_repo["data"] * 2, "malformed_mpack", "mpack")


def test_malformed_duplicate_top_level_key() -> None:
    data = b"\x82" + msgpack.packb("mpack_version") + b"\x01"
    data += msgpack.packb("mpack_version") + b"\x01"
    refuse(data, "malformed_mpack", "mpack_version")


# --- invalid_type ------------------------------------------------------------------------------


def _set(path: list[Any], value: Any) -> Callable[[Pack], None]:
    def change(pack: Pack) -> None:
        target: Any = pack
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _delete(path: list[Any]) -> Callable[[Pack], None]:
    def change(pack: Pack) -> None:
        target: Any = pack
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


def _commit_id(index: int) -> Callable[[Pack], str]:
    return lambda pack: str(pack["commits"][index]["commit_id"])


def _snapshot_id(index: int) -> Callable[[Pack], str]:
    return lambda pack: str(pack["snapshots"][index]["snapshot_id"])


def _const(text: str) -> Callable[[Pack], str]:
    return lambda pack: text


def _nested(levels: int) -> Any:
    """``levels`` containers, maps and arrays in turn, one inside the other."""
    value: Any = "leaf"
    for level in range(levels):
        value = {"d": value} if level % 2 else [value]
    return value


INVALID_TYPE_CASES: list[tuple[str, Callable[[Pack], None], Callable[[Pack], str]]] = [
    ("commits not a list", _set(["commits"], {"a": 1}), _const("commits")),
    ("commits nil", _set(["commits"], None), _const("commits")),
    ("snapshots not a list", _set(["snapshots"], "x"), _const("snapshots")),
    ("objects not a list", _set(["objects"], {"object_id": HI}), _const("objects")),
    ("object entry not a map", _set(["objects", 0], b"hi"), _const("objects[0]")),
    ("object content str", _set(["objects", 0, "content"], "hi"), _const(HI)),
    ("object content int", _set(["objects", 0, "content"], 7), _const(HI)),
    ("object content missing", _delete(["objects", 0, "content"]), _const(HI)),
    (
        "full manifest key",
        _set(["snapshots", 0, "manifest"], {"a.txt": HI}),
        _const("snapshots[0]"),
    ),
    ("snapshot not a map", _set(["snapshots", 1], ["x"]), _const("snapshots[1]")),
    ("delta_upsert a list", _set(["snapshots", 1, "delta_upsert"], ["a.txt"]), _snapshot_id(1)),
    ("delta_remove a map", _set(["snapshots", 1, "delta_remove"], {"b.txt": 1}), _snapshot_id(1)),
    ("upsert to int", _set(["snapshots", 0, "delta_upsert", "a.txt"], 5), _snapshot_id(0)),
    ("commit not a map", _set(["commits", 0], "commit"), _const("commits[0]")),
    ("message not str", _set(["commits", 1, "message"], 42), _commit_id(1)),
    ("committed_at missing", _delete(["commits", 1, "committed_at"]), _commit_id(1)),
    ("metadata values", _set(["commits", 0, "metadata"], {"k": 1}), _commit_id(0)),
    ("metadata a list", _set(["commits", 0, "metadata"], ["k"]), _commit_id(0)),
    ("structured_delta list", _set(["commits", 0, "structured_delta"], [1]), _commit_id(0)),
    ("breaking_changes str", _set(["commits", 0, "breaking_changes"], "api"), _commit_id(0)),
    ("reviewed_by ints", _set(["commits", 0, "reviewed_by"], [1]), _commit_id(0)),
    ("test_runs bool", _set(["commits", 0, "test_runs"], True), _commit_id(0)),
    ("format_version str", _set(["commits", 0, "format_version"], "5"), _commit_id(0)),
    ("branch not str", _set(["commits", 0, "branch"], 3), _commit_id(0)),
    ("author nil", _set(["commits", 0, "author"], None), _commit_id(0)),
    ("repo_id int", _set(["repo_id"], 12), _const("12")),
    # What the client's JSON commit file cannot hold, anywhere in the record:
    (
        "structured_delta bytes",
        _set(["commits", 0, "structured_delta"], {"ops": [1, {"raw": b"\x00"}]}),
        _commit_id(0),
    ),
    (
        "structured_delta bytes key",
        _set(["commits", 0, "structured_delta"], {b"k": 1}),
        _commit_id(0),
    ),
    ("metadata bytes key", _set(["commits", 0, "metadata"], {b"k": "v"}), _commit_id(0)),
    ("metadata bytes value", _set(["commits", 0, "metadata"], {"k": b"v"}), _commit_id(0)),
    ("unknown field bytes", _set(["commits", 2, "future_field"], b"\x00"), _commit_id(2)),
    (
        "unknown field bytes key",
        _set(["commits", 2, "future_field"], {"a": [{b"k": "v"}]}),
        _commit_id(2),
    ),
    (
        "structured_delta too deep",
        _set(["commits", 1, "structured_delta"], {"d": _nested(MAX_JSON_DEPTH - 1)}),
        _commit_id(1),
    ),
    (
        "unknown field too deep",
        _set(["commits", 1, "future"], _nested(MAX_JSON_DEPTH)),
        _commit_id(1),
    ),
    ("branch_heads a list", _set(["branch_heads"], ["main"]), _const("branch_heads")),
]


@pytest.mark.parametrize(
    ("change", "item"),
    [case[1:] for case in INVALID_TYPE_CASES],
    ids=[case[0] for case in INVALID_TYPE_CASES],
)
def test_invalid_type(
    small_repo: dict[str, Any],
    change: Callable[[Pack], None],
    item: Callable[[Pack], str],
) -> None:
    expected = item(small_repo["pack"])
    refuse(mutate(small_repo, change), "invalid_type", expected)


def test_commit_nested_up_to_the_depth_cap_verifies(small_repo: dict[str, Any]) -> None:
    """The record is one level: its fields may nest MAX_JSON_DEPTH - 1 containers deep."""
    deep = _nested(MAX_JSON_DEPTH - 1)
    data = mutate(small_repo, _set(["commits", 1, "future"], deep))
    record = verify_mpack(data, EmptyReceiver()).commits[1]
    assert record.fields["future"] == deep
    assert json.loads(json.dumps(record.to_dict(), indent=2)) == record.to_dict()


def test_invalid_type_non_string_top_level_key(small_repo: dict[str, Any]) -> None:
    pack: dict[Any, Any] = dict(small_repo["pack"])
    pack[7] = "x"
    data = encode(pack)
    refuse(data, "invalid_type", "7")


# --- unsupported_version -----------------------------------------------------------------------


@pytest.mark.parametrize("version", [2, 0, "1", None, 1.0, True])
def test_unsupported_version(small_repo: dict[str, Any], version: object) -> None:
    refuse(
        mutate(small_repo, _set(["mpack_version"], version)), "unsupported_version", repr(version)
    )


def test_missing_version(small_repo: dict[str, Any]) -> None:
    refuse(mutate(small_repo, _delete(["mpack_version"])), "unsupported_version", "None")


# --- invalid_id --------------------------------------------------------------------------------

BAD_ID = "ABC" + "0" * 61
INVALID_ID_CASES: list[tuple[str, Callable[[Pack], None], str]] = [
    ("object_id uppercase", _set(["objects", 0, "object_id"], HI.upper()), HI.upper()),
    ("object_id missing", _delete(["objects", 0, "object_id"]), "None"),
    ("object_id short", _set(["objects", 0, "object_id"], HI[:40]), HI[:40]),
    ("snapshot_id", _set(["snapshots", 0, "snapshot_id"], BAD_ID), BAD_ID),
    ("parent_snapshot_id", _set(["snapshots", 1, "parent_snapshot_id"], "zz"), "zz"),
    ("upsert object id", _set(["snapshots", 0, "delta_upsert", "a.txt"], BAD_ID), BAD_ID),
    ("commit_id", _set(["commits", 0, "commit_id"], "sha256:" + HI), "sha256:" + HI),
    ("commit snapshot_id", _set(["commits", 0, "snapshot_id"], BAD_ID), BAD_ID),
    ("parent_commit_id", _set(["commits", 1, "parent_commit_id"], BAD_ID), BAD_ID),
    ("parent2_commit_id", _set(["commits", 3, "parent2_commit_id"], 12345), "12345"),
    ("branch head", _set(["branch_heads", "main"], BAD_ID), BAD_ID),
]


@pytest.mark.parametrize(
    ("change", "item"),
    [case[1:] for case in INVALID_ID_CASES],
    ids=[case[0] for case in INVALID_ID_CASES],
)
def test_invalid_id(small_repo: dict[str, Any], change: Callable[[Pack], None], item: str) -> None:
    refuse(mutate(small_repo, change), "invalid_id", item)


def test_id_helpers() -> None:
    assert require_id(HI, "id") == HI
    with pytest.raises(MuseError) as info:
        require_id(HI + "0", "id")
    assert info.value.code == "invalid_id" and HI in (info.value.item or "")
    assert require_mpack_key("sha256:" + HI) == "sha256:" + HI
    for bad in (HI, "sha1:" + HI, "sha256:" + HI.upper(), None):
        with pytest.raises(MuseError) as info:
            require_mpack_key(bad)
        assert info.value.code == "invalid_id"


# --- object_hash_mismatch ----------------------------------------------------------------------


def test_object_hash_mismatch(small_repo: dict[str, Any]) -> None:
    refuse(mutate(small_repo, _set(["objects", 0, "content"], b"ho")), "object_hash_mismatch", HI)


def test_object_hash_mismatch_swapped_contents(small_repo: dict[str, Any]) -> None:
    def swap(pack: Pack) -> None:
        a, b = pack["objects"][0], pack["objects"][1]
        a["content"], b["content"] = b["content"], a["content"]

    refuse(mutate(small_repo, swap), "object_hash_mismatch", HI)


def test_object_hash_mismatch_empty_content(small_repo: dict[str, Any]) -> None:
    refuse(mutate(small_repo, _set(["objects", 3, "content"], b"")), "object_hash_mismatch")


# --- unknown_delta_base ------------------------------------------------------------------------


def test_unknown_delta_base(small_repo: dict[str, Any]) -> None:
    refuse(
        mutate(small_repo, _set(["snapshots", 3, "parent_snapshot_id"], UNKNOWN)),
        "unknown_delta_base",
        UNKNOWN,
    )


def test_unknown_delta_base_sent_after_its_delta(small_repo: dict[str, Any]) -> None:
    def reorder(pack: Pack) -> None:
        pack["snapshots"][0], pack["snapshots"][1] = pack["snapshots"][1], pack["snapshots"][0]

    base = small_repo["pack"]["snapshots"][0]["snapshot_id"]
    refuse(mutate(small_repo, reorder), "unknown_delta_base", base)


def test_a_held_base_is_fetched_once(tmp_path: Path) -> None:
    """Two deltas of the pack against one snapshot the receiver holds: one manifest read."""
    init_repo(tmp_path)
    c1 = commit_tree(tmp_path, {"a": b"hi"}, message="one", committed_at=T1)
    c2 = commit_tree(
        tmp_path, {"a": b"yo"}, message="two", committed_at=T2, parents=(c1.commit_id,)
    )
    c3 = commit_tree(
        tmp_path, {"b": b"hi"}, message="three", committed_at=T2, parents=(c1.commit_id,)
    )
    receiver = MemoryReceiver()
    first = encode(build_mpack(tmp_path, {"main": c1.commit_id}))
    receiver.absorb(verify_mpack(first, receiver), first)
    pack = build_mpack(tmp_path, {"main": c2.commit_id, "side": c3.commit_id}, have=[c1.commit_id])
    assert [s["parent_snapshot_id"] for s in pack["snapshots"]] == [c1.snapshot_id] * 2
    verify_mpack(encode(pack), receiver)
    assert receiver.manifest_requests == [c1.snapshot_id]


# --- invalid_delta -----------------------------------------------------------------------------


def test_invalid_delta_removes_an_absent_path(small_repo: dict[str, Any]) -> None:
    refuse(
        mutate(small_repo, _set(["snapshots", 3, "delta_remove"], ["nope.txt"])),
        "invalid_delta",
        "nope.txt",
    )


def test_invalid_delta_upserts_and_removes_a_path(small_repo: dict[str, Any]) -> None:
    refuse(
        mutate(small_repo, _set(["snapshots", 1, "delta_remove"], ["b.txt", "a.txt"])),
        "invalid_delta",
        "a.txt",
    )


# --- snapshot_hash_mismatch --------------------------------------------------------------------


def test_snapshot_hash_mismatch_wrong_object(small_repo: dict[str, Any]) -> None:
    sid = small_repo["pack"]["snapshots"][1]["snapshot_id"]
    refuse(
        mutate(small_repo, _set(["snapshots", 1, "delta_upsert", "a.txt"], HI)),
        "snapshot_hash_mismatch",
        sid,
    )


def test_snapshot_hash_mismatch_missing_entry(small_repo: dict[str, Any]) -> None:
    sid = small_repo["pack"]["snapshots"][0]["snapshot_id"]
    refuse(
        mutate(small_repo, _delete(["snapshots", 0, "delta_upsert", "empty"])),
        "snapshot_hash_mismatch",
        sid,
    )


def test_snapshot_hash_mismatch_forgotten_remove(small_repo: dict[str, Any]) -> None:
    sid = small_repo["pack"]["snapshots"][1]["snapshot_id"]
    refuse(
        mutate(small_repo, _set(["snapshots", 1, "delta_remove"], [])),
        "snapshot_hash_mismatch",
        sid,
    )


def test_snapshot_hash_mismatch_wrong_id(small_repo: dict[str, Any]) -> None:
    refuse(
        mutate(small_repo, _set(["snapshots", 3, "snapshot_id"], UNKNOWN)),
        "snapshot_hash_mismatch",
        UNKNOWN,
    )


# --- dangling_object ---------------------------------------------------------------------------


def _drop_readme(pack: Pack) -> None:
    pack["objects"] = [o for o in pack["objects"] if o["object_id"] != README]


def test_dangling_object(small_repo: dict[str, Any]) -> None:
    refuse(mutate(small_repo, _drop_readme), "dangling_object", README)


def test_object_held_by_the_receiver_is_not_dangling(small_repo: dict[str, Any]) -> None:
    receiver = MemoryReceiver()
    receiver.objects[README] = b"# readme\n"
    verified = verify_mpack(mutate(small_repo, _drop_readme), receiver)
    assert README not in {e.object_id for e in verified.objects}


# --- commit_id_mismatch ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("message", "tampered"),
        ("committed_at", "2026-03-16T12:01:00Z"),  # same instant, re-formatted
        ("snapshot_id", None),  # replaced below by another snapshot of the pack
        ("parent_commit_id", None),
    ],
)
def test_commit_id_mismatch(small_repo: dict[str, Any], field: str, value: str | None) -> None:
    pack: Pack = copy.deepcopy(small_repo["pack"])
    cid = pack["commits"][1]["commit_id"]
    if field == "snapshot_id":
        value = pack["snapshots"][0]["snapshot_id"]
    pack["commits"][1][field] = value
    refuse(encode(pack), "commit_id_mismatch", cid)


def test_merge_parents_in_either_order_verify(small_repo: dict[str, Any]) -> None:
    def swap(pack: Pack) -> None:
        merge = pack["commits"][3]
        merge["parent_commit_id"], merge["parent2_commit_id"] = (
            merge["parent2_commit_id"],
            merge["parent_commit_id"],
        )

    verified = verify_mpack(mutate(small_repo, swap), EmptyReceiver())
    assert verified.commits[3].commit_id == small_repo["commits"][3].commit_id


# --- duplicate_entry ---------------------------------------------------------------------------


def test_duplicate_snapshot(small_repo: dict[str, Any]) -> None:
    def repeat(pack: Pack) -> None:
        pack["snapshots"].append(copy.deepcopy(pack["snapshots"][1]))

    refuse(mutate(small_repo, repeat), "duplicate_entry", small_repo["commits"][1].snapshot_id)


def test_duplicate_commit_with_different_fields(small_repo: dict[str, Any]) -> None:
    def repeat(pack: Pack) -> None:
        # Unhashed fields differ: the same commit id, but not the same record.
        pack["commits"].append({**pack["commits"][1], "author": "mallory"})

    refuse(mutate(small_repo, repeat), "duplicate_entry", small_repo["commits"][1].commit_id)


def test_duplicate_commit_with_an_unknown_field_of_another_type(small_repo: dict[str, Any]) -> None:
    def repeat(pack: Pack) -> None:
        pack["commits"][1]["future"] = 1
        pack["commits"].append({**pack["commits"][1], "future": True})  # 1 == True in Python

    refuse(mutate(small_repo, repeat), "duplicate_entry", small_repo["commits"][1].commit_id)


def test_identical_duplicate_commit_is_tolerated(small_repo: dict[str, Any]) -> None:
    def repeat(pack: Pack) -> None:
        pack["commits"].append(copy.deepcopy(pack["commits"][1]))

    verified = verify_mpack(mutate(small_repo, repeat), EmptyReceiver())
    assert [c.commit_id for c in verified.commits] == [c.commit_id for c in small_repo["commits"]]


# --- missing_snapshot --------------------------------------------------------------------------


def test_missing_snapshot(small_repo: dict[str, Any]) -> None:
    sid = small_repo["pack"]["snapshots"][3]["snapshot_id"]
    refuse(mutate(small_repo, _delete(["snapshots", 3])), "missing_snapshot", sid)


def test_snapshot_held_by_the_receiver_is_not_missing(small_repo: dict[str, Any]) -> None:
    sid = small_repo["pack"]["snapshots"][3]["snapshot_id"]
    receiver = MemoryReceiver()
    receiver.manifests[sid] = {}
    verified = verify_mpack(mutate(small_repo, _delete(["snapshots", 3])), receiver)
    assert len(verified.snapshots) == 3


# --- missing_parent ----------------------------------------------------------------------------


def test_missing_parent_unknown(small_repo: dict[str, Any]) -> None:
    root_id = small_repo["commits"][0].commit_id
    refuse(mutate(small_repo, _delete(["commits", 0])), "missing_parent", root_id)


def test_missing_parent_child_before_parent(small_repo: dict[str, Any]) -> None:
    def reorder(pack: Pack) -> None:
        pack["commits"][0], pack["commits"][1] = pack["commits"][1], pack["commits"][0]

    root_id = small_repo["commits"][0].commit_id
    refuse(mutate(small_repo, reorder), "missing_parent", root_id)


def test_missing_parent_unknown_second_parent(small_repo: dict[str, Any]) -> None:
    pack: Pack = copy.deepcopy(small_repo["pack"])
    merge = pack["commits"][3]
    merge["parent2_commit_id"] = UNKNOWN
    merge["commit_id"] = compute_commit_id(
        (merge["parent_commit_id"], UNKNOWN),
        merge["snapshot_id"],
        merge["message"],
        merge["committed_at"],
    )
    pack["branch_heads"]["main"] = merge["commit_id"]
    refuse(encode(pack), "missing_parent", UNKNOWN)


def test_parent_held_by_the_receiver_is_not_missing(small_repo: dict[str, Any]) -> None:
    pack: Pack = copy.deepcopy(small_repo["pack"])
    root_commit = small_repo["commits"][0]
    del pack["commits"][0]
    receiver = MemoryReceiver()
    receiver.commits[root_commit.commit_id] = root_commit
    assert len(verify_mpack(encode(pack), receiver).commits) == 3


# --- missing_commit ----------------------------------------------------------------------------


def test_missing_commit_unknown_branch_head(small_repo: dict[str, Any]) -> None:
    refuse(mutate(small_repo, _set(["branch_heads", "main"], UNKNOWN)), "missing_commit", UNKNOWN)


def test_missing_commit_second_branch(small_repo: dict[str, Any]) -> None:
    refuse(
        mutate(small_repo, _set(["branch_heads", "feature/x"], UNKNOWN)),
        "missing_commit",
        UNKNOWN,
    )


# --- invalid_path ------------------------------------------------------------------------------

BAD_PATHS = ["../x", "/abs", "a//b", "a\\b", "a/./b", "a/..", "dir/", ".", "nul\x00byte", ""]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_invalid_path_in_upsert(small_repo: dict[str, Any], path: str) -> None:
    refuse(
        mutate(small_repo, _set(["snapshots", 0, "delta_upsert", path], HI)),
        "invalid_path",
        path or "''",
    )


@pytest.mark.parametrize("path", ["../b.txt", "/b.txt", "b.txt/"])
def test_invalid_path_in_remove(small_repo: dict[str, Any], path: str) -> None:
    refuse(mutate(small_repo, _set(["snapshots", 1, "delta_remove"], [path])), "invalid_path", path)


@pytest.mark.parametrize(
    "path", [".muse/HEAD", ".muse", ".MUSE/refs/heads/main", ".Muse/x", ".muse./x", ".muse /x"]
)
def test_invalid_path_inside_the_muse_directory(small_repo: dict[str, Any], path: str) -> None:
    refuse(
        mutate(small_repo, _set(["snapshots", 0, "delta_upsert", path], HI)), "invalid_path", path
    )


@pytest.mark.parametrize("path", ["docs/.muse/HEAD", ".muse-notes/a", "x.muse", ".mus"])
def test_muse_lookalike_paths_are_fine(small_repo: dict[str, Any], path: str) -> None:
    assert validate_manifest_path(path) == path


@pytest.mark.parametrize(
    ("index", "path", "clash"),
    [
        (0, "a.txt/inner", "a.txt"),  # a new path under an existing file
        (0, "docs", "docs"),  # a new file where the base has a directory: readme added below
        (1, "docs/readme.md/x", "docs/readme.md"),
        (1, "a.txt/deep/er", "a.txt"),
        (3, "musique", "musique"),  # against a base the delta does not touch there
    ],
)
def test_invalid_path_file_and_directory(
    small_repo: dict[str, Any], index: int, path: str, clash: str
) -> None:
    def add(pack: Pack) -> None:
        snapshot = pack["snapshots"][index]
        snapshot["delta_upsert"][path] = HI
        if path == "docs":
            snapshot["delta_upsert"]["docs/readme.md"] = README

    refuse(mutate(small_repo, add), "invalid_path", clash)


def test_a_file_may_replace_a_removed_directory(tmp_path: Path) -> None:
    init_repo(tmp_path)
    c1 = commit_tree(tmp_path, {"a/b": b"hi", "c": b"yo"}, message="one", committed_at=T1)
    c2 = commit_tree(
        tmp_path,
        {"a": b"hi", "c/d": b"yo"},
        message="two",
        committed_at=T2,
        parents=(c1.commit_id,),
    )
    write_branch_ref(tmp_path, "main", c2.commit_id)
    pack = build_mpack(tmp_path, ["main"])
    assert pack["snapshots"][1]["delta_remove"] == ["a/b", "c"]
    assert len(verify_mpack(encode(pack), EmptyReceiver()).snapshots) == 2


def test_invalid_path_not_a_string(small_repo: dict[str, Any]) -> None:
    refuse(mutate(small_repo, _set(["snapshots", 1, "delta_remove"], [7])), "invalid_path", "7")


# --- invalid_branch_name -----------------------------------------------------------------------

BAD_BRANCHES = [
    "feature/",
    ".hidden",
    "a..b",
    "a//b",
    "x\ty",
    "",
    "/lead",
    "trail.",
    "nul\x00",
    "cr\rlf",
    "line\nfeed",
    "back\\slash",
    "x" * 256,
    "a/./b",
    "feature/./x",
]


@pytest.mark.parametrize("name", BAD_BRANCHES, ids=[repr(b)[:20] for b in BAD_BRANCHES])
def test_invalid_branch_name(small_repo: dict[str, Any], name: str) -> None:
    head = small_repo["commits"][3].commit_id
    refuse(
        mutate(small_repo, _set(["branch_heads"], {name: head})),
        "invalid_branch_name",
        name or "''",
    )


def test_branch_and_a_branch_under_it(small_repo: dict[str, Any]) -> None:
    head = small_repo["commits"][3].commit_id
    heads = {"release/1.0/hotfix": head, "main": head, "release/1.0": head}
    refuse(mutate(small_repo, _set(["branch_heads"], heads)), "invalid_branch_name", "release/1.0")


@pytest.mark.parametrize("name", ["a/b.lock", "x.lock/y", "v1.0/.x", "a/.b/c", "a.b/c"])
def test_dotted_branch_names_are_fine(name: str) -> None:
    assert validate_branch_name(name) == name


def test_branch_heads_are_at_most_one_transaction(small_repo: dict[str, Any]) -> None:
    assert Limits().max_branch_heads == 100
    head = small_repo["commits"][3].commit_id
    heads = {f"b{i:03d}": head for i in range(100)}
    assert (
        len(
            verify_mpack(
                mutate(small_repo, _set(["branch_heads"], heads)), EmptyReceiver()
            ).branch_heads
        )
        == 100
    )
    heads["one-more"] = head
    refuse(mutate(small_repo, _set(["branch_heads"], heads)), "limit_exceeded", "branch_heads")


def test_longest_branch_name_is_fine(small_repo: dict[str, Any]) -> None:
    head = small_repo["commits"][3].commit_id
    data = mutate(small_repo, _set(["branch_heads"], {"x" * 255: head, "feature/x/y.z": head}))
    assert len(verify_mpack(data, EmptyReceiver()).branch_heads) == 2


# --- limit_exceeded ----------------------------------------------------------------------------

LIMIT_CASES: list[tuple[str, Limits, str]] = [
    ("objects", Limits(max_objects=1), "objects"),
    ("pack bytes", Limits(max_pack_bytes=100), "mpack"),
    ("commits", Limits(max_commits=3), "commits"),
    ("snapshots", Limits(max_snapshots=3), "snapshots"),
    ("branch heads", Limits(max_branch_heads=0), "branch_heads"),
    ("object bytes", Limits(max_object_bytes=5), "mpack"),
    ("string bytes", Limits(max_string_bytes=16), "mpack"),
]


@pytest.mark.parametrize(
    ("limits", "item"), [c[1:] for c in LIMIT_CASES], ids=[c[0] for c in LIMIT_CASES]
)
def test_limit_exceeded(small_repo: dict[str, Any], limits: Limits, item: str) -> None:
    refuse(small_repo["data"], "limit_exceeded", item, limits=limits)


def test_limits_that_fit_pass(small_repo: dict[str, Any]) -> None:
    tight = Limits(
        max_pack_bytes=len(small_repo["data"]),
        max_objects=6,
        max_commits=4,
        max_snapshots=4,
        max_branch_heads=1,
        max_object_bytes=9,
        max_string_bytes=64,
        max_manifest_entries=30,
    )
    assert len(verify_mpack(small_repo["data"], EmptyReceiver(), limits=tight).objects) == 6


def test_limit_exceeded_manifest_entries(tmp_path: Path) -> None:
    """A delta stays small but the manifest it rebuilds grows past the limit."""
    init_repo(tmp_path)
    files = {f"f{i:02d}": bytes([i]) for i in range(25)}
    c1 = commit_tree(tmp_path, files, message="one", committed_at="2026-03-16T12:00:00+00:00")
    files.update({f"g{i:02d}": bytes([100 + i]) for i in range(10)})
    c2 = commit_tree(
        tmp_path,
        files,
        message="two",
        committed_at="2026-03-16T12:01:00+00:00",
        parents=(c1.commit_id,),
    )
    write_branch_ref(tmp_path, "main", c2.commit_id)
    data = encode(build_mpack(tmp_path, ["main"]))
    verify_mpack(data, EmptyReceiver(), limits=Limits(max_manifest_entries=35))
    refuse(data, "limit_exceeded", c2.snapshot_id, limits=Limits(max_manifest_entries=30))


def test_limit_exceeded_rebuilt_entries(small_repo: dict[str, Any]) -> None:
    """Each snapshot costs its delta's entries, plus its base's when a later delta reads that
    base again (it is copied), summed over the pack."""
    snapshots = small_repo["pack"]["snapshots"]
    uses = Counter(s["parent_snapshot_id"] for s in snapshots if s["parent_snapshot_id"])
    manifests: dict[str, dict[str, str]] = {}
    work = 0
    for snap in snapshots:
        parent = snap["parent_snapshot_id"]
        base = manifests[parent] if parent else {}
        work += len(snap["delta_upsert"]) + len(snap["delta_remove"])
        if parent:
            uses[parent] -= 1
            work += len(base) if uses[parent] else 0
        manifests[snap["snapshot_id"]] = apply_delta(
            base, snap["delta_upsert"], snap["delta_remove"]
        )
    data = small_repo["data"]
    verify_mpack(data, EmptyReceiver(), limits=Limits(max_rebuilt_entries=work))
    last = snapshots[-1]["snapshot_id"]
    refuse(data, "limit_exceeded", last, limits=Limits(max_rebuilt_entries=work - 1))


def test_a_long_history_of_a_large_tree_costs_its_deltas_not_commits_x_files(
    tmp_path: Path,
) -> None:
    """Budgeted as commits x files (the old rule), this history would take 40 x 200 = 8,000
    rebuilt entries; what rebuilding costs is the deltas' entries, 200 + 39 x 2."""
    generate_history(tmp_path, Workload(commits=40, files=200, changed_per_commit=2))
    data = encode(build_mpack(tmp_path, ["main"]))
    verified = verify_mpack(data, EmptyReceiver(), limits=Limits(max_rebuilt_entries=200 + 39 * 2))
    assert len(verified.snapshots) == 40
    assert all(s.entry_count == 200 for s in verified.snapshots)
    refuse(data, "limit_exceeded", verified.snapshots[-1].snapshot_id,
           limits=Limits(max_rebuilt_entries=200 + 39 * 2 - 1))  # fmt: skip


def test_limit_exceeded_hashed_manifest_bytes(small_repo: dict[str, Any]) -> None:
    """Each snapshot id hashes its whole manifest: the bytes hashed are bounded per pack."""
    manifests: dict[str, dict[str, str]] = {}
    hashed = 0
    for snap in small_repo["pack"]["snapshots"]:
        parent = snap["parent_snapshot_id"]
        manifest = apply_delta(
            manifests[parent] if parent else {}, snap["delta_upsert"], snap["delta_remove"]
        )
        manifests[snap["snapshot_id"]] = manifest
        hashed += sum(len(path.encode()) + len(oid) + 2 for path, oid in manifest.items())
    data = small_repo["data"]
    verify_mpack(data, EmptyReceiver(), limits=Limits(max_hashed_manifest_bytes=hashed))
    last = small_repo["pack"]["snapshots"][-1]["snapshot_id"]
    refuse(data, "limit_exceeded", last, limits=Limits(max_hashed_manifest_bytes=hashed - 1))


def test_limit_exceeded_manifest_path_length(small_repo: dict[str, Any]) -> None:
    path = "a/" * 2048 + "x"
    refuse(
        mutate(small_repo, _set(["snapshots", 0, "delta_upsert", path], HI)),
        "limit_exceeded",
        path,
    )


# --- mpack_key_mismatch ------------------------------------------------------------------------


def test_mpack_key_mismatch(small_repo: dict[str, Any]) -> None:
    wrong = "sha256:" + "0" * 64
    refuse(small_repo["data"], "mpack_key_mismatch", wrong, expected_key=wrong)


def test_mpack_key_mismatch_after_one_changed_byte(small_repo: dict[str, Any]) -> None:
    data: bytes = small_repo["data"]
    key = mpack_key(data)
    # Change a byte inside the repo_id string: still a valid pack, but not the uploaded one.
    at = data.index(b"11111111-2222")
    tampered = data[:at] + b"9" + data[at + 1 :]
    assert verify_mpack(tampered, EmptyReceiver()).repo_id == "91111111-2222-3333-4444-555555555555"
    refuse(tampered, "mpack_key_mismatch", key, expected_key=key)
    assert verify_mpack(data, EmptyReceiver(), expected_key=key).key == key
