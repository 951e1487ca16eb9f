"""The portable-name rule through a real push: presign, S3 upload, unpack-mpack on moto.

Every refused path or branch name answers 422 with the rule's code, names the offending item,
and leaves no commit, snapshot, object index or ref behind; the accepted ones are stored and
read back unchanged.
"""

from __future__ import annotations

from core.test_portable_names import ACCEPTED_BRANCHES, ACCEPTED_PATHS
from histories import History
from ingest.test_event_path import history_items

from muse_cloud_dev.provision import Provisioned
from muse_core.errors import MAX_ITEM_CHARS, clip
from muse_core.mpack import encode_mpack

from .client import call
from .test_endpoints import create_repo, expect_error, identity, push

# One case of each rule (tests/core runs the whole table through verify_mpack): a push costs a
# presign, an upload and an ingestion each.
REFUSED_PATHS = [
    "x" * 256,
    ".muse::$INDEX_ALLOCATION/HEAD",
    "MUSE~1/HEAD",
    ".mu\u200cse/HEAD",
    ".MUSE/HEAD",
    ".muse /HEAD",
    "CON",
    "songs/aux.mid",
    "COM\u00b9",
    "a:b",
    "a\x01b",
    "dir./x",
]
REFUSED_BRANCHES = ["é" * 128, "CON", "feature/lpt1.x", "a:b", "what?", "dir /x"]


def test_writable_paths_and_branch_names_are_pushed_and_read_back(stack: Provisioned) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    history = History()
    head = history.add({path: path.encode() for path in ACCEPTED_PATHS})
    heads = {name: head for name in ACCEPTED_BRANCHES} | {"main": head}
    answer = push(stack, owner, repo, encode_mpack(history.pack(heads)), branch=None)
    assert answer.status == 200, answer.body

    refs = call("GET", "/olivia/songs/refs").json()
    assert refs["branch_heads"] == heads
    snapshot_id = history.records[head].snapshot_id
    snapshot = call("GET", f"/olivia/songs/snapshots/{snapshot_id}").json()
    assert set(snapshot["manifest"]) == set(ACCEPTED_PATHS)


def test_unwritable_paths_are_refused_by_the_push(stack: Provisioned) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    for path in REFUSED_PATHS:
        history = History(tag=path)
        history.add({path: b"hi", "keep.txt": b"yo"})
        answer = push(stack, owner, repo, encode_mpack(history.pack()))
        body = expect_error(answer, 422, "invalid_path")
        assert body["item"] == clip(path, MAX_ITEM_CHARS), (path, body)
    assert history_items(repo["repoId"]) == {}


def test_unwritable_branch_names_are_refused_by_the_push(stack: Provisioned) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    history = History()
    head = history.add({"a.txt": b"hi"})
    for name in REFUSED_BRANCHES:
        answer = push(stack, owner, repo, encode_mpack(history.pack({name: head})), branch=None)
        body = expect_error(answer, 422, "invalid_branch_name")
        assert body["item"] == clip(name, MAX_ITEM_CHARS), (name, body)
    assert history_items(repo["repoId"]) == {}
