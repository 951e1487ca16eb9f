"""Hostile variations of one valid pack, as hypothesis strategies of real msgpack bytes.

Each family attacks one layer: the bytes (bit flips, truncation), the msgpack types (type swaps,
huge integers), the records' identities (duplicates, parent cycles, missing bases, wrong
versions) and the names a clone writes (hostile paths and branch names, rebuilt with correct
ids so they reach the path rules instead of failing an id check first).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
from histories import History
from hypothesis import strategies as st

from muse_core.mpack import encode_mpack

Pack = dict[str, Any]
TreePath = tuple[str | int, ...]


def base_history() -> History:
    """Three commits on ``main`` and one on ``side`` branching off the first, nested paths
    included."""
    history = History("attack")
    root = history.add({"tracks/a.mid": b"a0", "tracks/b.mid": b"b0", "notes.txt": b"n"})
    history.add({"tracks/a.mid": b"a1", "docs/deep/readme.md": b"# r\n"})
    history.add({"tracks/b.mid": b"b2"})
    history.add({"side.txt": b"s"}, parent=root)
    return history


def base_pack(history: History) -> Pack:
    heads = {"main": history.order[2], "side": history.order[3]}
    return history.pack(heads)


def encode(pack: Any) -> bytes:
    """Real msgpack bytes of a pack, or of whatever a mutation made of it."""
    return bytes(msgpack.packb(pack, use_bin_type=True))


def paths_in(value: Any, prefix: TreePath = ()) -> Iterator[TreePath]:
    """Every node of the pack tree (blobs included), outermost first."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths_in(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths_in(child, (*prefix, index))


def replaced(pack: Pack, path: TreePath, value: Any) -> Any:
    """The pack with the node at ``path`` replaced (the empty path replaces the whole pack)."""
    if not path:
        return value
    changed = copy.deepcopy(pack)
    node: Any = changed
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return changed


def nested(depth: int, leaf: Any = "x") -> Any:
    value: Any = leaf
    for _ in range(depth):
        value = [value]
    return value


ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=16),
    st.binary(max_size=16),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(min_value=0, max_value=5), max_size=2),
    st.dictionaries(st.integers(min_value=0, max_value=5), st.text(max_size=4), max_size=2),
)
HUGE_INTS = st.sampled_from([2**64 - 1, 2**63, 2**63 - 1, -(2**63), 2**53 + 1, -1])
HEX64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
WRONG_VERSIONS = st.sampled_from(
    [0, 2, -1, 2**64 - 1, "1", 1.0, True, None, b"\x01", [1], {"v": 1}]
)
HOSTILE_PATHS = st.sampled_from(
    [
        "../escape.mid",
        "/etc/passwd",
        "a/../../b",
        "./a",
        "a//b",
        "a/",
        "",
        ".muse/HEAD",
        ".MUSE/HEAD",
        ".Muse/objects/x",
        ".muse::$INDEX_ALLOCATION/HEAD",
        "MUSE~1/HEAD",
        ".mu\u200cse/HEAD",
        ".muse./HEAD",
        "CON",
        "nul.txt",
        "a:b",
        "a\\b",
        "a\x00b",
        "tab\there",
        "x" * 256,
        "d/" + "y" * 255,
        "é" * 128,
        "a/" * 2100 + "z",
    ]
)
HOSTILE_BRANCHES = st.sampled_from(
    [
        "",
        "/",
        "../main",
        "a//b",
        "a/",
        ".hidden",
        "x.lock",
        "HEAD",
        "a b",
        "a\x00b",
        "a~1",
        "a^b",
        "a:b",
        "@{u}",
        "b" * 300,
    ]
)


def _nodes(pack: Pack) -> list[TreePath]:
    return list(paths_in(pack))


@st.composite
def bit_flips(draw: st.DrawFn, data: bytes) -> bytes:
    flipped = bytearray(data)
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        index = draw(st.integers(min_value=0, max_value=len(flipped) - 1))
        flipped[index] ^= 1 << draw(st.integers(min_value=0, max_value=7))
    return bytes(flipped)


@st.composite
def truncations(draw: st.DrawFn, data: bytes) -> bytes:
    return data[: draw(st.integers(min_value=0, max_value=len(data) - 1))]


@st.composite
def type_swaps(draw: st.DrawFn, pack: Pack) -> bytes:
    path = draw(st.sampled_from(_nodes(pack)))
    return encode(replaced(pack, path, draw(ANY_VALUE)))


@st.composite
def huge_ints(draw: st.DrawFn, pack: Pack) -> bytes:
    path = draw(st.sampled_from(_nodes(pack)))
    return encode(replaced(pack, path, draw(HUGE_INTS)))


@st.composite
def duplicate_ids(draw: st.DrawFn, pack: Pack) -> bytes:
    kind, id_field = draw(
        st.sampled_from(
            [("commits", "commit_id"), ("snapshots", "snapshot_id"), ("objects", "object_id")]
        )
    )
    records = pack[kind]
    first = draw(st.integers(min_value=0, max_value=len(records) - 1))
    second = draw(st.integers(min_value=0, max_value=len(records) - 1))
    changed = copy.deepcopy(pack)
    if draw(st.booleans()):
        changed[kind].insert(second, copy.deepcopy(records[first]))  # the same record twice
    else:
        changed[kind][second][id_field] = records[first][id_field]  # two records, one id
    return encode(changed)


@st.composite
def parent_cycles(draw: st.DrawFn, pack: Pack) -> bytes:
    commits = pack["commits"]
    child = draw(st.integers(min_value=0, max_value=len(commits) - 1))
    ancestor = draw(st.integers(min_value=child, max_value=len(commits) - 1))
    field = draw(st.sampled_from(["parent_commit_id", "parent2_commit_id"]))
    # A commit naming itself or one of its descendants as a parent.
    return encode(replaced(pack, ("commits", child, field), commits[ancestor]["commit_id"]))


@st.composite
def missing_bases(draw: st.DrawFn, pack: Pack) -> bytes:
    unknown = draw(HEX64)
    choices: list[Callable[[], Pack]] = [
        lambda: replaced(
            pack,
            ("snapshots", draw(st.integers(min_value=0, max_value=len(pack["snapshots"]) - 1))),
            {**pack["snapshots"][-1], "parent_snapshot_id": unknown},
        ),
        lambda: replaced(pack, ("commits", len(pack["commits"]) - 1, "parent_commit_id"), unknown),
        lambda: replaced(pack, ("commits", 0, "snapshot_id"), unknown),
        lambda: replaced(pack, ("branch_heads", "main"), unknown),
        lambda: {**pack, "snapshots": pack["snapshots"][1:]},
        lambda: {**pack, "commits": pack["commits"][1:]},
        lambda: {**pack, "objects": pack["objects"][1:]},
        lambda: {k: v for k, v in pack.items() if k != draw(st.sampled_from(sorted(pack)))},
    ]
    return encode(draw(st.sampled_from(choices))())


@st.composite
def wrong_versions(draw: st.DrawFn, pack: Pack) -> bytes:
    return encode({**pack, "mpack_version": draw(WRONG_VERSIONS)})


@st.composite
def hostile_paths(draw: st.DrawFn, _: Pack) -> bytes:
    history = History("hostile")
    history.add({"ok.txt": b"ok", draw(HOSTILE_PATHS): b"bad"})
    return encode_mpack(history.pack())


@st.composite
def hostile_branches(draw: st.DrawFn, _: Pack) -> bytes:
    history = History("branch")
    history.add({"ok.txt": b"ok"})
    names = draw(st.lists(HOSTILE_BRANCHES | st.sampled_from(["x", "x/y"]), min_size=1))
    return encode_mpack(history.pack(dict.fromkeys(names, history.head)))


Family = Callable[[Pack, bytes], st.SearchStrategy[bytes]]
FAMILIES: dict[str, Family] = {
    "bit_flip": lambda _, data: bit_flips(data),
    "truncation": lambda _, data: truncations(data),
    "type_swap": lambda pack, _: type_swaps(pack),
    "huge_int": lambda pack, _: huge_ints(pack),
    "duplicate_id": lambda pack, _: duplicate_ids(pack),
    "parent_cycle": lambda pack, _: parent_cycles(pack),
    "missing_base": lambda pack, _: missing_bases(pack),
    "wrong_version": lambda pack, _: wrong_versions(pack),
    "hostile_path": lambda pack, _: hostile_paths(pack),
    "hostile_branch": lambda pack, _: hostile_branches(pack),
}
