"""Format round trips: what muse_core writes is the client's format, and what the client writes
(hand-written JSON here, never through muse_core) is read back without losing anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muse_core.commits import (
    COMMIT_FIELDS,
    CommitRecord,
    commit_path,
    has_commit,
    read_commit,
    write_commit,
)
from muse_core.delta import apply_delta
from muse_core.errors import MuseError
from muse_core.ids import blob_id
from muse_core.mpack import build_mpack, decode_mpack, encode_mpack
from muse_core.object_store import has_object, object_path, read_object, write_object
from muse_core.refs import (
    list_branches,
    read_branch_ref,
    read_head,
    write_branch_ref,
    write_head,
)
from muse_core.repo import SCHEMA_VERSION, init_repo, read_repo_info
from muse_core.snapshot import compute_commit_id, compute_snapshot_id
from muse_core.snapshots import (
    SnapshotChainWriter,
    SnapshotRecord,
    has_snapshot,
    read_snapshot,
    snapshot_json,
    snapshot_path,
    write_snapshot,
)
from muse_core.verify import EmptyReceiver, verify_mpack

from .conftest import MemoryReceiver, commit_tree

EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_init_repo_layout(tmp_path: Path) -> None:
    info = init_repo(tmp_path)
    muse = tmp_path / ".muse"
    on_disk = json.loads((muse / "repo.json").read_text())
    assert on_disk == info == read_repo_info(tmp_path)
    assert set(on_disk) >= {"repo_id", "schema_version", "created_at", "domain"}
    assert on_disk["schema_version"] == SCHEMA_VERSION == "0.1.5"
    assert on_disk["domain"] == "code"
    assert (muse / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert (muse / "refs/heads/main").read_text() == ""
    for sub in ("objects", "commits", "snapshots"):
        assert (muse / sub).is_dir()
    assert read_head(tmp_path) == ("ref", "main")
    assert read_branch_ref(tmp_path, "main") is None
    assert list_branches(tmp_path) == {}


def test_init_repo_keeps_an_existing_main_ref(tmp_path: Path) -> None:
    init_repo(tmp_path, repo_id="fixed")
    write_branch_ref(tmp_path, "main", "a" * 64)
    info = init_repo(tmp_path, repo_id="fixed", domain="music")
    assert info["repo_id"] == "fixed" and info["domain"] == "music"
    assert read_branch_ref(tmp_path, "main") == "a" * 64


@pytest.mark.parametrize("data", [b"hi", b"", bytes(range(256)) * 8])
def test_object_round_trip(tmp_path: Path, data: bytes) -> None:
    oid = blob_id(data)
    path = write_object(tmp_path, oid, data)
    assert path == tmp_path / ".muse" / "objects" / oid[:2] / oid[2:]
    assert path == object_path(tmp_path, oid)
    assert path.read_bytes() == data  # raw, uncompressed, no header
    assert has_object(tmp_path, oid)
    assert read_object(tmp_path, oid) == data
    # Written once: a second write never rewrites.
    write_object(tmp_path, oid, b"something else")
    assert read_object(tmp_path, oid) == data
    assert not list(path.parent.glob(".*.tmp"))


def test_empty_object_id(tmp_path: Path) -> None:
    write_object(tmp_path, blob_id(b""), b"")
    assert blob_id(b"") == EMPTY
    assert (tmp_path / ".muse/objects/e3" / EMPTY[2:]).read_bytes() == b""


def test_object_store_refuses_bad_ids(tmp_path: Path) -> None:
    for bad in ("A" * 64, "abc", "g" * 64, "../" + "a" * 61):
        with pytest.raises(MuseError) as info:
            write_object(tmp_path, bad, b"x")
        assert info.value.code == "invalid_id"
        assert bad in (info.value.item or "")


def test_snapshot_round_trip(tmp_path: Path) -> None:
    manifest = {"a.txt": blob_id(b"hi"), "dir/sub/é.mid": blob_id(b""), "b": blob_id(b"yo")}
    sid = compute_snapshot_id(manifest)
    record = SnapshotRecord(sid, manifest, "2026-03-16T12:00:00+00:00")
    path = write_snapshot(tmp_path, record)
    assert path == snapshot_path(tmp_path, sid) == tmp_path / f".muse/snapshots/{sid}.json"
    text = path.read_text(encoding="utf-8")
    body = {"snapshot_id": sid, "manifest": manifest, "created_at": record.created_at}
    assert text == json.dumps(body, indent=2) + "\n"
    assert has_snapshot(tmp_path, sid)
    back = read_snapshot(tmp_path, sid)
    assert back == record
    assert back.manifest == manifest and back.created_at == record.created_at


# Plain ASCII (nothing json escapes: ", " and ": " inside strings included), or any text.
_PLAIN = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126, exclude_characters='"\\'),
    max_size=12,
)
_STRING = (
    _PLAIN | st.text(max_size=12) | st.sampled_from([", ", '", "', '", ', ": ", "\\", '\\", "'])
)


@settings(max_examples=300)
@given(
    manifest=st.dictionaries(_STRING, _STRING, max_size=8),
    created_at=st.text(max_size=30),
)
def test_snapshot_files_are_json_dumps_indent_2_byte_for_byte(
    manifest: dict[str, str], created_at: str
) -> None:
    sid = "0" * 64
    body = {"snapshot_id": sid, "manifest": manifest, "created_at": created_at}
    assert snapshot_json(sid, manifest, created_at) == json.dumps(body, indent=2) + "\n"


_DELTA_STEP = st.tuples(
    st.integers(min_value=-1, max_value=4),  # the base: none (-1), or a snapshot back (0: the last)
    st.dictionaries(_STRING, st.sampled_from(["a" * 64, "b" * 64, "c" * 64]), max_size=5),
    st.lists(_STRING, max_size=3),
)


@settings(max_examples=150)
@given(steps=st.lists(_DELTA_STEP, min_size=1, max_size=8))
def test_a_chain_of_deltas_is_written_as_write_snapshot_writes_its_manifests(
    tmp_path_factory: pytest.TempPathFactory,
    steps: list[tuple[int, dict[str, str], list[str]]],
) -> None:
    chained, whole = tmp_path_factory.mktemp("chained"), tmp_path_factory.mktemp("whole")
    writer = SnapshotChainWriter(chained)
    written: list[tuple[str, dict[str, str]]] = []
    for number, (back, upsert, remove) in enumerate(steps):
        base = written[-1 - back] if 0 <= back < len(written) else None
        # Remove some of the base's own paths too, not only names it may not hold.
        removed = [*remove, *list(base[1])[: len(remove)]] if base else remove
        manifest = apply_delta(base[1] if base else {}, upsert, removed)
        sid = f"{number:064x}"
        writer.write(sid, base[0] if base else None, upsert, removed, "at")
        write_snapshot(whole, SnapshotRecord(sid, manifest, "at"))
        written.append((sid, manifest))
        assert snapshot_path(chained, sid).read_bytes() == snapshot_path(whole, sid).read_bytes()


def test_snapshot_without_created_at_gets_one(tmp_path: Path) -> None:
    sid = compute_snapshot_id({})
    write_snapshot(tmp_path, SnapshotRecord(sid, {}))
    back = read_snapshot(tmp_path, sid)
    assert back.manifest == {} and back.created_at


def test_commit_round_trip(tmp_path: Path) -> None:
    sid = compute_snapshot_id({"a.txt": blob_id(b"hi")})
    record = CommitRecord.create(
        snapshot_id=sid,
        message="init",
        committed_at="2026-11-25T15:33:40.478579+00:00",
        repo_id="r-1",
        metadata={"k": "v"},
        structured_delta={"ops": [{"kind": "insert", "path": "a.txt"}]},
    )
    path = write_commit(tmp_path, record)
    assert path == commit_path(tmp_path, record.commit_id)
    assert path == tmp_path / f".muse/commits/{record.commit_id}.json"
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps(record.to_dict(), indent=2) + "\n"
    on_disk = json.loads(text)
    # The client's field order, with its defaults.
    assert list(on_disk)[:8] == [
        "commit_id",
        "repo_id",
        "branch",
        "snapshot_id",
        "message",
        "committed_at",
        "parent_commit_id",
        "parent2_commit_id",
    ]
    assert on_disk["format_version"] == 5
    assert on_disk["parent_commit_id"] is None and on_disk["parent2_commit_id"] is None
    assert has_commit(tmp_path, record.commit_id)
    back = read_commit(tmp_path, record.commit_id)
    assert back == record
    assert back.to_dict() == record.to_dict() == on_disk
    assert back.expected_id() == back.commit_id


def test_branch_refs_nested_and_head(tmp_path: Path) -> None:
    init_repo(tmp_path)
    a, b = "a" * 64, "b" * 64
    write_branch_ref(tmp_path, "main", a)
    write_branch_ref(tmp_path, "feature/x", b)
    write_branch_ref(tmp_path, "feature/deep/y", a)
    heads = tmp_path / ".muse/refs/heads"
    assert (heads / "main").read_text() == a  # no trailing newline
    assert (heads / "feature" / "x").read_text() == b
    assert read_branch_ref(tmp_path, "feature/x") == b
    assert read_branch_ref(tmp_path, "feature/deep/y") == a
    assert read_branch_ref(tmp_path, "missing") is None
    assert list_branches(tmp_path) == {"feature/deep/y": a, "feature/x": b, "main": a}
    write_head(tmp_path, "feature/x")
    assert (tmp_path / ".muse/HEAD").read_text() == "ref: refs/heads/feature/x\n"
    assert read_head(tmp_path) == ("ref", "feature/x")
    (tmp_path / ".muse/HEAD").write_text(f"commit: {a}\n")
    assert read_head(tmp_path) == ("commit", a)


@pytest.mark.parametrize("name", ["feature/", ".hidden", "a..b", "a//b", "x\ty", "", "/x"])
def test_write_branch_ref_refuses_bad_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(MuseError) as info:
        write_branch_ref(tmp_path, name, "a" * 64)
    assert info.value.code == "invalid_branch_name"


def test_missing_head_means_main(tmp_path: Path) -> None:
    assert read_head(tmp_path) == ("ref", "main")


def test_api_written_repo_packs_and_verifies(tmp_path: Path) -> None:
    """Everything written through the API is packed, verified and rebuilt exactly."""
    init_repo(tmp_path, repo_id="repo-1")
    c1 = commit_tree(
        tmp_path, {"a.txt": b"hi"}, message="init", committed_at="2026-03-16T12:00:00+00:00"
    )
    c2 = commit_tree(
        tmp_path,
        {"a.txt": b"hi", "b.txt": b"yo"},
        message="second",
        committed_at="2026-03-16T12:01:00+00:00",
        parents=(c1.commit_id,),
        branch="feature/x",
    )
    write_branch_ref(tmp_path, "main", c1.commit_id)
    write_branch_ref(tmp_path, "feature/x", c2.commit_id)
    pack = build_mpack(tmp_path)
    assert pack["repo_id"] == "repo-1"
    assert pack["branch_heads"] == {"feature/x": c2.commit_id, "main": c1.commit_id}
    data = encode_mpack(pack)
    receiver = MemoryReceiver()
    verified = verify_mpack(data, receiver)
    receiver.absorb(verified, data)
    assert [c.to_dict() for c in verified.commits] == [c1.to_dict(), c2.to_dict()]
    assert receiver.manifests == {
        c.snapshot_id: read_snapshot(tmp_path, c.snapshot_id).manifest for c in (c1, c2)
    }
    assert receiver.objects == {blob_id(b"hi"): b"hi", blob_id(b"yo"): b"yo"}


def _client_commit(
    parents: list[str], snapshot_id: str, message: str, at: str, **fields: Any
) -> dict[str, Any]:
    """A commit record as a client (not muse_core) would serialise it."""
    record: dict[str, Any] = {
        "commit_id": compute_commit_id(parents, snapshot_id, message, at),
        "repo_id": "0b7e5a3c-2f1e-4d8b-9a6c-1234567890ab",
        "branch": "main",
        "snapshot_id": snapshot_id,
        "message": message,
        "committed_at": at,
        "parent_commit_id": parents[0] if parents else None,
        "parent2_commit_id": parents[1] if len(parents) > 1 else None,
    }
    record.update(fields)
    return record


def _write_json(path: Path, body: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


@pytest.fixture
def client_repo(tmp_path: Path) -> dict[str, Any]:
    """A repository laid out by hand exactly as the Muse client writes it."""
    muse = tmp_path / ".muse"
    _write_json(muse / "repo.json", {"repo_id": "legacy-repo", "owner": "alice"})
    (muse / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    blobs = {"song.mid": b"MThd\x00\x00\x00\x06", "notes/empty.txt": b"", "lyrics/歌.txt": b"la"}
    manifest: dict[str, str] = {}
    for path, data in blobs.items():
        oid = blob_id(data)
        target = muse / "objects" / oid[:2] / oid[2:]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        manifest[path] = oid
    sid = compute_snapshot_id(manifest)
    _write_json(
        muse / "snapshots" / f"{sid}.json",
        {"snapshot_id": sid, "manifest": manifest, "created_at": "2026-11-25T15:33:40+00:00"},
    )
    smaller = {p: o for p, o in manifest.items() if p != "lyrics/歌.txt"}
    sid0 = compute_snapshot_id(smaller)
    _write_json(
        muse / "snapshots" / f"{sid0}.json",
        {"snapshot_id": sid0, "manifest": smaller, "created_at": "2026-11-25T15:33:00+00:00"},
    )
    # An old record: no format_version and few fields; a new one with fields unknown today.
    old = _client_commit([], sid0, "first", "2026-11-25T15:33:00+00:00")
    new = _client_commit(
        [old["commit_id"]],
        sid,
        "add lyrics",
        "2026-11-25T15:33:40.478579+00:00",
        author="",
        metadata={"daw": "ardour"},
        structured_delta={"added": [{"path": "lyrics/歌.txt", "tracks": [1, 2]}], "n": 1},
        sem_ver_bump="minor",
        breaking_changes=[],
        agent_id="",
        model_id="",
        toolchain_id="",
        prompt_hash="",
        signature="",
        signer_key_id="",
        format_version=7,
        reviewed_by=["bob"],
        test_runs=3,
        future_field={"nested": [1, "two", None, {"three": 3.5}]},
        another_new_flag=True,
    )
    for record in (old, new):
        _write_json(muse / "commits" / f"{record['commit_id']}.json", record)
    (muse / "refs" / "heads").mkdir(parents=True)
    (muse / "refs" / "heads" / "main").write_text(new["commit_id"], encoding="utf-8")
    (muse / "refs" / "heads" / "draft").write_text("", encoding="utf-8")
    (muse / "config.toml").write_text("[user]\nname = 'alice'\n", encoding="utf-8")
    return {"root": tmp_path, "old": old, "new": new, "blobs": blobs, "manifest": manifest}


def test_read_client_written_repository(client_repo: dict[str, Any]) -> None:
    root: Path = client_repo["root"]
    new: dict[str, Any] = client_repo["new"]
    assert read_repo_info(root) == {"repo_id": "legacy-repo", "owner": "alice"}
    assert read_branch_ref(root, "draft") is None
    assert list_branches(root) == {"main": new["commit_id"]}
    record = read_commit(root, new["commit_id"])
    assert record.to_dict() == new
    assert record.fields["future_field"] == new["future_field"]
    assert record.expected_id() == record.commit_id
    old = read_commit(root, client_repo["old"]["commit_id"])
    assert old.to_dict() == client_repo["old"]
    assert "format_version" not in old.to_dict()
    # Writing it back through muse_core keeps every field, unknown ones included.
    write_commit(root, record)
    assert json.loads(commit_path(root, record.commit_id).read_text()) == new
    assert read_snapshot(root, new["snapshot_id"]).manifest == client_repo["manifest"]
    for data in client_repo["blobs"].values():
        assert read_object(root, blob_id(data)) == data


def test_client_repository_pack_round_trip(client_repo: dict[str, Any]) -> None:
    root: Path = client_repo["root"]
    old, new = client_repo["old"], client_repo["new"]
    pack = build_mpack(root)  # every branch with a commit; the empty "draft" is skipped
    assert pack["repo_id"] == "legacy-repo"
    assert pack["branch_heads"] == {"main": new["commit_id"]}
    assert pack["commits"] == [old, new]  # unknown fields travel unchanged
    data = encode_mpack(pack)
    assert decode_mpack(data) == pack
    verified = verify_mpack(data, EmptyReceiver())
    assert verified.repo_id == "legacy-repo"
    assert [c.to_dict() for c in verified.commits] == [old, new]
    assert verified.commits[1].fields["another_new_flag"] is True
    contents = {data[e.offset : e.offset + e.length] for e in verified.objects}
    assert contents == set(client_repo["blobs"].values())
    assert EMPTY in {e.object_id for e in verified.objects}
    first, second = verified.snapshots
    assert first.parent_snapshot_id is None
    assert second.parent_snapshot_id == first.snapshot_id
    assert second.delta_upsert == {"lyrics/歌.txt": blob_id(b"la")}
    assert second.delta_remove == []


def test_repository_without_repo_json_packs_with_nil_repo_id(client_repo: dict[str, Any]) -> None:
    root: Path = client_repo["root"]
    (root / ".muse" / "repo.json").unlink()
    pack = build_mpack(root, ["main"])
    assert pack["repo_id"] is None
    assert verify_mpack(encode_mpack(pack), EmptyReceiver()).repo_id is None


def test_build_mpack_of_an_empty_branch_is_refused(client_repo: dict[str, Any]) -> None:
    with pytest.raises(MuseError) as info:
        build_mpack(client_repo["root"], ["draft"])
    assert info.value.code == "missing_commit"
    assert info.value.item == "draft"


def test_a_newer_clients_field_order_is_written_back_byte_for_byte(
    client_repo: dict[str, Any],
) -> None:
    """An unknown field between known ones stays where the client put it, through a pack too."""
    root: Path = client_repo["root"]
    old = client_repo["old"]
    fields = list(old.items())
    record = dict([*fields[:3], ("lineage", {"z": 1, "a": [2]}), *fields[3:]])
    path = commit_path(root, old["commit_id"])
    _write_json(path, record)
    original = path.read_bytes()
    back = read_commit(root, old["commit_id"])
    assert list(back.to_dict()) == list(record)
    write_commit(root, back)
    assert path.read_bytes() == original
    verified = verify_mpack(encode_mpack(build_mpack(root, ["main"])), EmptyReceiver())
    assert list(verified.commits[0].to_dict()) == list(record)


def test_create_orders_fields_as_the_client(tmp_path: Path) -> None:
    record = CommitRecord.create(
        snapshot_id=EMPTY, message="m", committed_at="t", future="x", test_runs=2, author="a"
    )
    names = list(record.to_dict())
    assert names[:-1] == list(COMMIT_FIELDS) and names[-1] == "future"
    assert record.fields["test_runs"] == 2 and record.fields["author"] == "a"


def test_merge_of_a_held_branch_does_not_resend_its_objects(tmp_path: Path) -> None:
    """The receiver holds a feature branch; the merge into main carries main's side only."""
    init_repo(tmp_path)
    base = commit_tree(
        tmp_path, {"a": b"base"}, message="base", committed_at="2026-03-16T12:00:00+00:00"
    )
    feature = commit_tree(
        tmp_path,
        {"a": b"base", "feature.mid": b"feature bytes"},
        message="feature",
        committed_at="2026-03-16T12:01:00+00:00",
        parents=(base.commit_id,),
        branch="feature",
    )
    main = commit_tree(
        tmp_path,
        {"a": b"main change"},
        message="main",
        committed_at="2026-03-16T12:02:00+00:00",
        parents=(base.commit_id,),
    )
    merge = commit_tree(
        tmp_path,
        {"a": b"main change", "feature.mid": b"feature bytes", "merge.txt": b"resolved"},
        message="merge",
        committed_at="2026-03-16T12:03:00+00:00",
        parents=(main.commit_id, feature.commit_id),
    )
    receiver = MemoryReceiver()
    first = encode_mpack(build_mpack(tmp_path, {"feature": feature.commit_id}))
    receiver.absorb(verify_mpack(first, receiver), first)

    pack = build_mpack(tmp_path, {"main": merge.commit_id}, have=[feature.commit_id])
    assert [c["commit_id"] for c in pack["commits"]] == [main.commit_id, merge.commit_id]
    merge_delta = pack["snapshots"][1]
    assert merge_delta["parent_snapshot_id"] == main.snapshot_id
    assert blob_id(b"feature bytes") in merge_delta["delta_upsert"].values()
    sent = {o["object_id"] for o in pack["objects"]}
    assert sent == {blob_id(b"main change"), blob_id(b"resolved")}
    data = encode_mpack(pack)
    receiver.absorb(verify_mpack(data, receiver), data)
    assert (
        receiver.manifests[merge.snapshot_id] == read_snapshot(tmp_path, merge.snapshot_id).manifest
    )
