"""Names every checkout can write: manifest paths and branch names, through ``verify_mpack``.

A repository is cloned onto Linux, macOS and Windows alike, so a path segment must be a name all
of them hold, and no top-level name may reach into ``.muse`` on any of them (case folding,
NTFS 8.3 names and streams, Windows dropping trailing dots and spaces, HFS+ skipping ignorable
code points).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from muse_core.mpack import build_mpack
from muse_core.refs import write_branch_ref
from muse_core.repo import init_repo
from muse_core.verify import EmptyReceiver, verify_mpack

from .conftest import commit_tree, encode, refuse

T0 = "2026-03-16T12:00:00+00:00"

ACCEPTED_PATHS = [
    "x" * 255,
    "é" * 127 + "x",  # 255 bytes of UTF-8
    "deep/" + "y" * 255 + "/z",
    "docs/.muse/HEAD",  # only the top level can reach into the repository's .muse
    ".muse-notes/a",
    "x.muse",
    "muse~1x",
    "muse~/a",
    "MUSE~1.txt",
    "console.txt",
    "conf/aux-send.mid",
    "com10",
    "lpt",
    "nul-take-2.wav",
    ".hidden",
    "a b/c d.mid",
    "Ω/音楽/🎵.mid",
    "a\u200cb/x",  # ZWNJ is part of Persian words; HFS+ only matters for .muse
    "a\u00a0b",
    "a%3Ab",
    "x/...y",
]

MUSE_ALIASES = [
    ".muse::$INDEX_ALLOCATION/HEAD",
    ".muse::$DATA",
    ".muse:stream/HEAD",
    ".muse . :x/HEAD",
    "MUSE~1/HEAD",
    "muse~2/refs/heads/main",
    "Muse~10/x",
    "MUSE~1.",
    ".mu\u200cse/HEAD",
    ".mu\u200dse/HEAD",
    "\u200e.muse/HEAD",
    ".muse\u200f/HEAD",
    ".m\u202ause/HEAD",
    ".mus\u202ee/HEAD",
    "\u206a.muse/HEAD",
    ".muse\u206f/HEAD",
    "\ufeff.muse/HEAD",
    ".MUSE/HEAD",
    ".muse./HEAD",
    ".muse /HEAD",
    ".muse../HEAD",
]

UNWRITABLE_PATHS = [
    "x" * 256,
    "a/" + "é" * 128,
    "CON",
    "con.txt",
    "a/Nul",
    "AUX.tar.gz",
    "prn /x",
    "COM1",
    "com0/x",
    "lpt9.mid",
    "COM\u00b9",
    "LPT\u00b3.txt",
    "conin$",
    "CONOUT$.log",
    "a:b",
    "a<b",
    "a>b",
    'a"b',
    "a|b",
    "a?b",
    "a*b",
    "a\x01b",
    "tab\there",
    "line\nfeed",
    "a\x1fb",
    "dir./x",
    "dir /x",
    "x.",
    "x ",
]

REFUSED_PATHS = MUSE_ALIASES + UNWRITABLE_PATHS

ACCEPTED_BRANCHES = [
    "x" * 255,
    "feature/" + "é" * 123,  # a 246-byte segment
    "release/v1.0",
    "con-fix",
    "fix/com10",
    "a/.b/c",
    "MUSE~1",  # refs live inside .muse: no alias of it can arise there
    "音楽/🎵",
]

REFUSED_BRANCHES = [
    "é" * 128,  # 128 characters, 256 bytes: one file name too long
    "feature/" + "ü" * 200,
    "CON",
    "feature/nul",
    "aux.fix",
    "Com7",
    "lpt\u00b2",
    "a:b",
    "a<b",
    "a>b",
    'a"b',
    "a|b",
    "what?",
    "a*b",
    "a\x01b",
    "a\x1fb",
    "dir /x",
    "dir./x",
    "a/b ",
]


def _pack_with_path(root: Path, path: str) -> bytes:
    init_repo(root)
    commit = commit_tree(root, {path: b"hi", "keep.txt": b"yo"}, message="one", committed_at=T0)
    write_branch_ref(root, "main", commit.commit_id)
    return encode(build_mpack(root, ["main"]))


@pytest.mark.parametrize("path", ACCEPTED_PATHS, ids=[repr(p)[:24] for p in ACCEPTED_PATHS])
def test_writable_paths_verify(tmp_path: Path, path: str) -> None:
    verified = verify_mpack(_pack_with_path(tmp_path, path), EmptyReceiver())
    assert path in verified.snapshots[0].delta_upsert


@pytest.mark.parametrize("path", REFUSED_PATHS, ids=[repr(p)[:24] for p in REFUSED_PATHS])
def test_unwritable_paths_are_refused(tmp_path: Path, path: str) -> None:
    error = refuse(_pack_with_path(tmp_path, path), "invalid_path", path)
    assert error.message.startswith("manifest path")


@pytest.mark.parametrize("path", REFUSED_PATHS, ids=[repr(p)[:24] for p in REFUSED_PATHS])
def test_unwritable_paths_are_refused_in_removals(small_repo: dict[str, Any], path: str) -> None:
    pack = dict(small_repo["pack"])
    pack["snapshots"] = [dict(s) for s in pack["snapshots"]]
    pack["snapshots"][1]["delta_remove"] = [path]
    refuse(encode(pack), "invalid_path", path)


@pytest.mark.parametrize("path", MUSE_ALIASES, ids=[repr(p)[:24] for p in MUSE_ALIASES])
def test_aliases_of_the_muse_directory_are_named_as_such(tmp_path: Path, path: str) -> None:
    error = refuse(_pack_with_path(tmp_path, path), "invalid_path", path)
    assert "lies in the repository's .muse" in error.message


@pytest.mark.parametrize(
    ("path", "segment", "reason"),
    [
        ("a/" + "b" * 256 + "/c", "b" * 256, "is longer than 255 bytes"),
        ("songs/take:2.mid", "take:2.mid", "contains ':', which Windows refuses in a name"),
        ("songs/LPT1.mid", "LPT1.mid", "is the Windows device name 'LPT1'"),
        ("songs./x", "songs.", "ends with '.', which Windows drops"),
    ],
)
def test_the_message_names_the_segment_and_why(
    tmp_path: Path, path: str, segment: str, reason: str
) -> None:
    error = refuse(_pack_with_path(tmp_path, path), "invalid_path", path)
    assert error.message == f"manifest path segment {segment!r} {reason}"


def _pack_with_branch(small_repo: dict[str, Any], branch: str) -> bytes:
    pack = dict(small_repo["pack"])
    pack["branch_heads"] = {branch: small_repo["commits"][3].commit_id}
    return encode(pack)


@pytest.mark.parametrize("name", ACCEPTED_BRANCHES, ids=[repr(b)[:24] for b in ACCEPTED_BRANCHES])
def test_writable_branch_names_verify(small_repo: dict[str, Any], name: str) -> None:
    verified = verify_mpack(_pack_with_branch(small_repo, name), EmptyReceiver())
    assert list(verified.branch_heads) == [name]


@pytest.mark.parametrize("name", REFUSED_BRANCHES, ids=[repr(b)[:24] for b in REFUSED_BRANCHES])
def test_unwritable_branch_names_are_refused(small_repo: dict[str, Any], name: str) -> None:
    refuse(_pack_with_branch(small_repo, name), "invalid_branch_name", name)
