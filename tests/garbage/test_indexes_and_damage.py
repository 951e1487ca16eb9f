"""Dead packs folded into the multi-pack index, and repositories whose history is damaged."""

from __future__ import annotations

import pytest
from histories import linear_history

from muse_cloud.composition import Services
from muse_cloud.domain.repos import Repo
from muse_cloud.storage import keys
from muse_cloud.storage.pack_index import FOLD_AFTER_PACKS, MultiPackIndex
from muse_core.ids import blob_id

from .conftest import bucket_of, collector, lost_push, push, table_of, upload_key, with_a_lost_push
from .test_sweep import everything_reads


def test_dead_packs_leave_the_multi_pack_index_before_their_bytes_go(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = linear_history(commits=2)
    push(services, repo, history.pack())
    lost = [lost_push(services, repo, history, tag, monkeypatch) for tag in "abcd"]
    index = services.stores.pack_index
    before = index.stored(repo.repo_id).midx_key
    assert before is not None, f"{FOLD_AFTER_PACKS} packs are folded"
    data = bucket_of(services).get(before)
    assert data is not None
    folded = {p for p, _ in MultiPackIndex.decode(data).packs}
    assert {r.push_id for r in lost} & folded
    lost_objects = {blob_id(f"lost {tag}\n".encode()) for tag in "abcd"}
    assert index.known(repo.repo_id, lost_objects) == lost_objects

    sweep = collector(services).run().repositories[0]

    assert sweep.packs == len(lost)
    after = index.stored(repo.repo_id).midx_key
    assert after is not None and after != before
    rewritten = bucket_of(services).get(after)
    assert rewritten is not None
    assert not {p for p, _ in MultiPackIndex.decode(rewritten).packs} & {r.push_id for r in lost}
    assert index.known(repo.repo_id, lost_objects) == set()
    everything_reads(services, repo)
    # The MIDX replaced stays for readers that listed it; the next pass deletes it.
    assert bucket_of(services).exists(before)
    again = collector(services).run().repositories[0]
    assert [f.key for f in again.files] == [before]
    assert not bucket_of(services).exists(before)


def test_a_missing_commit_leaves_the_repository_alone(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = with_a_lost_push(services, repo, monkeypatch).history
    table = table_of(services)
    del table.items[(keys.commit(repo.repo_id, history.order[0])["pk"], "COMMIT")]
    items = dict(table.items)

    sweep = collector(services).run().repositories[0]

    assert sweep.outcome == "damaged" and history.order[0] in sweep.reason
    assert table.items == items


def test_a_pack_item_without_its_bytes_leaves_the_repository_alone(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    pushed = with_a_lost_push(services, repo, monkeypatch).base
    bucket_of(services).delete_keys([upload_key(repo, pushed)])
    items = dict(table_of(services).items)

    sweep = collector(services).run().repositories[0]

    assert sweep.outcome == "damaged" and upload_key(repo, pushed) in sweep.reason
    assert table_of(services).items == items


def test_of_packs_pushing_the_same_objects_one_stays(services: Services, repo: Repo) -> None:
    """The same history pushed in several packs (each to its own branch): every object is in
    each, one pack is enough, and the MIDX they were folded into stops naming the others."""
    history = linear_history(commits=3)
    pushed = []
    for n in range(FOLD_AFTER_PACKS):
        pack = history.pack({f"copy-{n}": history.head})
        pack["repo_id"] = f"copy-{n}"
        pushed.append(push(services, repo, pack))
    index = services.stores.pack_index
    assert index.stored(repo.repo_id).midx_key is not None

    sweep = collector(services).run().repositories[0]

    assert (sweep.commits, sweep.snapshots, sweep.packs) == (0, 0, FOLD_AFTER_PACKS - 1)
    (kept,) = index.stored(repo.repo_id).items
    assert kept in {p.push_id for p in pushed}
    everything_reads(services, repo)
    midx = index.stored(repo.repo_id).midx_key
    data = bucket_of(services).get(midx) if midx else None
    assert data is not None and [p for p, _ in MultiPackIndex.decode(data).packs] == [kept]
