"""Pack indexes: objects are found through one index per pushed pack, folded into a
multi-pack index as packs accumulate, never through an item per object."""

from __future__ import annotations

from pathlib import Path

import pytest

from muse_cloud.domain.identities import Caller
from muse_cloud.storage import keys
from muse_cloud.storage.pack_index import (
    FOLD_AFTER_PACKS,
    INLINE_INDEX_BYTES,
    MultiPackIndex,
    ObjectLocation,
    PackIndex,
    PackListing,
    decode_index,
    encode_index,
    fold,
)
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import services, stores
from muse_core.mpack import build_mpack, decode_mpack, encode_mpack
from muse_core.refs import list_branches

from .test_event_path import table_items, upload

OWNER = Caller(handle="alice", identity_id=None)


def test_index_round_trip() -> None:
    locations = [ObjectLocation(f"{n:064x}", "incoming/r/p.mpack", n * 7, n) for n in range(5)]
    data = encode_index(reversed(locations))
    assert data == encode_index(locations), "sorted by object id whatever the order sent"
    wanted = {locations[1].object_id, locations[3].object_id, "f" * 64}
    assert decode_index(data, "incoming/r/p.mpack", wanted) == {
        loc.object_id: loc for loc in (locations[1], locations[3])
    }


def test_a_fold_keeps_the_first_location_and_finds_every_entry() -> None:
    repo = "r"
    first = [ObjectLocation(f"{n:064x}", f"incoming/{repo}/{'a' * 64}.mpack", n, 1) for n in (1, 3)]
    second = [
        ObjectLocation(f"{n:064x}", f"incoming/{repo}/{'b' * 64}.mpack", n, 2) for n in (2, 3)
    ]
    base = fold(None, {"a" * 64: encode_index(first)})
    midx = MultiPackIndex.decode(fold(base, {"b" * 64: encode_index(second)}).encode())
    assert [p for p, _ in midx.packs] == ["a" * 64, "b" * 64]
    assert len(midx) == 3
    found = midx.find(repo, [f"{n:064x}" for n in range(5)])
    assert found == {
        first[0].object_id: first[0],
        second[0].object_id: second[0],
        first[1].object_id: first[1],  # held by both packs: the one folded first answers
    }


def push_history(
    stack: Provisioned, root: Path, repo_id: str, pushes: int, files: int
) -> dict[str, bytes]:
    """``pushes`` packs of two commits each, every one on top of the last; returns the bytes
    of every object sent, by id."""
    sent: dict[str, bytes] = {}
    have: list[str] = []
    for n in range(pushes):
        generate_history(root, Workload(commits=2, files=files, changed_per_commit=2), start=2 * n)
        data = encode_mpack(build_mpack(root, have=have))
        sent.update({o["object_id"]: o["content"] for o in decode_mpack(data)["objects"]})
        assert services().ingest.ingest(upload(stack, repo_id, data)).state == "ok"
        have = [list_branches(root)["main"]]
    return sent


def test_a_clone_reads_pack_indexes_and_gets_the_same_bytes(
    stack: Provisioned, tmp_path: Path
) -> None:
    repo = stores().repos.create("alice", "big", "public")
    files = 450  # a first pack whose index is too large to ride in its PACK item
    generate_history(tmp_path, Workload(commits=3, files=files, changed_per_commit=2))
    first_head = list_branches(tmp_path)["main"]
    data = encode_mpack(build_mpack(tmp_path))
    assert len(encode_index([])) == 0 and 48 * files > INLINE_INDEX_BYTES
    assert services().ingest.ingest(upload(stack, repo.repo_id, data)).state == "ok"
    generate_history(tmp_path, Workload(commits=2, files=files, changed_per_commit=2), start=3)
    second = encode_mpack(build_mpack(tmp_path, have=[first_head]))
    assert services().ingest.ingest(upload(stack, repo.repo_id, second)).state == "ok"

    items = table_items()
    assert not [pk for pk, _ in items if pk.startswith("OBJ#")], "no item per object"
    partition = {sk: i for (pk, sk), i in items.items() if pk == f"REPO#{repo.repo_id}"}
    packs = [
        i
        for sk, i in partition.items()
        if sk.startswith(keys.PACK_SK) and not sk.startswith(keys.MIDX_SK)
    ]
    marks = [i for sk, i in partition.items() if sk.startswith(keys.UNFOLDED_SK)]
    assert len(packs) == len(marks) == 2, "each pack unfolded: its item and its mark"
    assert sorted("index_key" in p for p in marks) == [False, True]  # the small one inline

    answer = services().fetch.fetch(OWNER, "alice", "big", [], [])
    assert answer.objects == files + 4 * 2 and answer.mpack_key is not None
    fetched = stores().bucket.get(f"fetch/{repo.repo_id}/{answer.mpack_key[7:]}.mpack")
    assert fetched is not None
    pack = decode_mpack(fetched)
    source = {o["object_id"]: o["content"] for o in decode_mpack(data)["objects"]}
    source.update({o["object_id"]: o["content"] for o in decode_mpack(second)["objects"]})
    assert {o["object_id"]: o["content"] for o in pack["objects"]} == source

    few = list(source)[:3]
    assert {
        loc.object_id for loc in stores().pack_index.locate_all(repo.repo_id, few).values()
    } == set(few)
    index = stores().pack_index
    located = index.locate(repo.repo_id, few[0])
    assert located is not None
    assert (
        stores().packs.read_range(located.s3_key, located.offset, located.length) == source[few[0]]
    )
    assert index.known(repo.repo_id, [*few, "0" * 64]) == set(few)
    other = stores().repos.create("mallory", "copycat", "public").repo_id
    assert index.known(other, few) == set(), "another repository's packs grant nothing"


def test_packs_fold_into_a_multi_pack_index_and_every_object_stays_found(
    stack: Provisioned, tmp_path: Path
) -> None:
    repo_id = stores().repos.create("alice", "many", "public").repo_id
    pushes = FOLD_AFTER_PACKS + 2
    sent = push_history(stack, tmp_path, repo_id, pushes, files=20)
    sent_ids = set(sent)

    pointer = stores().table.get(keys.pack(repo_id, "MIDX"))
    assert pointer is not None
    midx_bytes = stores().bucket.get(pointer["midx_key"])
    assert midx_bytes is not None
    midx = MultiPackIndex.decode(midx_bytes)
    assert len(midx.packs) == FOLD_AFTER_PACKS, "folded once the fourth pack was indexed"
    listing = stores().pack_index.listing(repo_id)
    assert listing.midx_key == pointer["midx_key"]
    assert len(listing.uncovered) == pushes - FOLD_AFTER_PACKS
    # What a push reads to find objects stays this small however many packs came before.
    assert len(listing.marks) == pushes - FOLD_AFTER_PACKS, "the fold removed its packs' marks"
    assert stores().pack_index.known(repo_id, sent_ids) == sent_ids
    located = stores().pack_index.locate_all(repo_id, sent_ids)
    for object_id, content in sent.items():
        loc = located[object_id]
        assert stores().packs.read_range(loc.s3_key, loc.offset, loc.length) == content


def test_a_pack_reindexed_after_a_fold_is_read_from_its_own_item(
    stack: Provisioned, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash mid-index leaves a partial index that a fold may cover; the rerun's full index
    differs, so readers read it from the PACK item instead of trusting the MIDX."""
    repo_id = stores().repos.create("alice", "rerun", "public").repo_id
    push_history(stack, tmp_path, repo_id, FOLD_AFTER_PACKS - 1, files=10)
    generate_history(
        tmp_path, Workload(commits=2, files=10, changed_per_commit=3), start=2 * FOLD_AFTER_PACKS
    )
    data = encode_mpack(build_mpack(tmp_path, have=[stores().refs.heads(repo_id)["main"]]))
    key = upload(stack, repo_id, data)
    objects = {o["object_id"] for o in decode_mpack(data)["objects"]}

    real = PackIndex.index

    def half(self: PackIndex, repo: str, locations: list[ObjectLocation]) -> tuple[int, int]:
        real(self, repo, locations[: len(locations) // 2])
        raise RuntimeError("crash")

    monkeypatch.setattr(PackIndex, "index", half)
    with pytest.raises(RuntimeError):
        services().ingest.ingest(key)
    midx = stores().pack_index.listing(repo_id).midx_key
    assert midx is not None, "the partial index was folded"
    assert stores().pack_index.known(repo_id, objects) != objects

    monkeypatch.setattr(PackIndex, "index", real)
    assert services().ingest.ingest(key).state == "ok"
    assert stores().pack_index.known(repo_id, objects) == objects
    assert key.mpack_hex in stores().pack_index.listing(repo_id).uncovered


def test_a_fold_keeps_the_mark_of_a_pack_reindexed_while_it_folded(
    stack: Provisioned, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rerun rewrites a pack's index between a fold's listing and its pointer move: the
    fold moves nothing (its transaction holds only while every mark names what was folded),
    so the rewritten index stays listed, and the next push folds again."""
    repo_id = stores().repos.create("alice", "racing", "public").repo_id
    sent = push_history(stack, tmp_path, repo_id, FOLD_AFTER_PACKS - 1, files=10)
    real = PackIndex.listing
    rewritten: list[str] = []

    def listing_then_a_rerun(self: PackIndex, repo: str) -> PackListing:
        listed = real(self, repo)
        if len(listed.uncovered) >= FOLD_AFTER_PACKS and not rewritten:
            mpack_hex = sorted(listed.marks)[0]
            mark = self.table.get(keys.unfolded_pack(repo, mpack_hex))
            assert mark is not None
            self.table.put({**mark, "index_sha256": "0" * 64})
            rewritten.append(mpack_hex)
        return listed

    monkeypatch.setattr(PackIndex, "listing", listing_then_a_rerun)
    generate_history(
        tmp_path, Workload(commits=2, files=10, changed_per_commit=2), start=2 * FOLD_AFTER_PACKS
    )
    data = encode_mpack(build_mpack(tmp_path, have=[stores().refs.heads(repo_id)["main"]]))
    assert services().ingest.ingest(upload(stack, repo_id, data)).state == "ok"

    assert rewritten, "the fold ran and met the rerun"
    assert stores().table.get(keys.pack(repo_id, "MIDX")) is None, "the pointer did not move"
    monkeypatch.setattr(PackIndex, "listing", real)
    listing = stores().pack_index.listing(repo_id)
    assert set(listing.marks) == set(listing.uncovered) and len(listing.marks) == FOLD_AFTER_PACKS
    assert stores().pack_index.known(repo_id, set(sent)) == set(sent)
