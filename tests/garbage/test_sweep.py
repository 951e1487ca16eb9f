"""One pass on a live repository: what goes, what stays, and that what stays still reads."""

from __future__ import annotations

import pytest
from histories import linear_history

from muse_cloud.composition import Services
from muse_cloud.domain.repos import Repo
from muse_cloud.storage import keys
from muse_core.mpack import encode_mpack

from .conftest import bucket_of, collector, lost_push, push, table_of, upload_key, with_a_lost_push


def everything_reads(services: Services, repo: Repo) -> None:
    """Every commit a ref reaches, its snapshot rebuilt and checked, its objects found."""
    stores = services.stores
    for head in stores.refs.heads(repo.repo_id).values():
        frontier = [head]
        while frontier:
            stored = stores.commits.get(repo.repo_id, frontier.pop())
            assert stored is not None
            frontier += stored.record.parent_ids
            manifest = stores.snapshots.manifest(repo.repo_id, stored.record.snapshot_id)
            assert manifest is not None
            located = stores.pack_index.locate_all(repo.repo_id, set(manifest.values()))
            assert set(located) == set(manifest.values())
            for location in located.values():
                assert stores.packs.read_range(location.s3_key, location.offset, location.length)


def test_a_push_that_lost_its_race_is_collected_whole(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    history, _, lost = with_a_lost_push(services, repo, monkeypatch)
    loser_commit = lost.head
    assert loser_commit is not None
    table = table_of(services)
    assert keys.pack(repo.repo_id, lost.push_id)["sk"] in {sk for _, sk in table.items}
    before = dict(table.items)

    report = collector(services).run()

    (sweep,) = report.repositories
    assert (sweep.outcome, sweep.commits, sweep.snapshots, sweep.packs) == ("swept", 1, 1, 1)
    assert [f.key for f in sweep.files] == [upload_key(repo, lost)]
    gone = set(before) - set(table.items)
    assert gone == {
        (keys.commit(repo.repo_id, loser_commit)["pk"], "COMMIT"),
        (keys.snapshot(repo.repo_id, history.records[loser_commit].snapshot_id)["pk"], "SNAP"),
        tuple(keys.pack(repo.repo_id, lost.push_id).values()),
        tuple(keys.unfolded_pack(repo.repo_id, lost.push_id).values()),
        # Its bytes left the quotas with it.
        tuple(keys.stored_pack(repo.repo_id, lost.push_id).values()),
    }
    assert not bucket_of(services).exists(upload_key(repo, lost))
    # The push record stays: it is what the client polls for the refusal.
    assert services.stores.pushes.get(repo.repo_id, lost.push_id) is not None
    everything_reads(services, repo)
    assert collector(services).run().repositories[0].outcome == "clean"


def test_an_overwritten_push_goes_and_what_it_shared_stays(services: Services, repo: Repo) -> None:
    first = linear_history(commits=4, tag="first")
    second = linear_history(commits=2, tag="second")
    # The rewritten history shares a file's bytes with the first one.
    shared = first.snapshots[first.records[first.head].snapshot_id]["tracks/first-0.mid"]
    second.add({"tracks/shared.mid": first.blobs[shared]})
    overwritten = push(services, repo, first.pack())
    assert push(services, repo, second.pack(), force=True).state == "ok"

    sweep = collector(services).run().repositories[0]

    assert (sweep.commits, sweep.snapshots, sweep.packs) == (4, 4, 1)
    assert not bucket_of(services).exists(upload_key(repo, overwritten))
    assert services.stores.pack_index.known(repo.repo_id, [shared]) == {shared}
    for commit_id in first.order:
        assert services.stores.commits.get(repo.repo_id, commit_id) is None
    everything_reads(services, repo)


def test_history_a_ref_left_inside_a_kept_pack_goes_too(services: Services, repo: Repo) -> None:
    """A force push back to an ancestor: the pack still holds what the ancestor needs, but
    the commits past it are unreachable; left behind, a push could build on them as held."""
    history = linear_history(commits=5)
    pushed = push(services, repo, history.pack())
    back = history.order[2]
    moved = push(services, repo, history.pack({"main": back}, history.order[:3]), force=True)
    assert moved.state == "ok" and moved.result is not None
    assert moved.result.commits_written == 0

    sweep = collector(services).run().repositories[0]

    # The move's own pack carried no object: nothing in it is needed.
    assert (sweep.commits, sweep.snapshots, sweep.packs) == (2, 2, 1)
    assert [f.key for f in sweep.files] == [upload_key(repo, moved)]
    assert bucket_of(services).exists(upload_key(repo, pushed))
    assert services.stores.commits.known(repo.repo_id, history.order) == set(history.order[:3])
    everything_reads(services, repo)
    # Pushed again, the history is whole again: the pack is ingested anew.
    assert push(services, repo, history.pack()).state == "ok"
    everything_reads(services, repo)


def test_an_upload_never_ingested_goes_after_the_grace_period(
    services: Services, repo: Repo
) -> None:
    history = linear_history()
    pack = history.pack()
    pack["commits"][-1]["message"] = "forged"
    refused = push(services, repo, pack)
    assert refused.state == "failed"
    key = upload_key(repo, refused)

    kept = services.gc.run(grace_seconds=3600).repositories[0]
    assert kept.outcome == "clean" and bucket_of(services).exists(key)

    sweep = collector(services).run().repositories[0]
    assert [(f.key, f.bytes) for f in sweep.files] == [(key, len(encode_mpack(pack)))]
    assert not bucket_of(services).exists(key)


def test_within_the_grace_period_what_a_push_touched_stays(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_a_lost_push(services, repo, monkeypatch)
    table = dict(table_of(services).items)
    files = dict(bucket_of(services).blobs)

    report = services.gc.run()

    assert report.repositories[0].outcome == "clean"
    assert table_of(services).items == table and bucket_of(services).blobs == files


def test_a_dry_run_lists_what_the_pass_deletes_and_deletes_nothing(
    services: Services, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = linear_history(commits=3)
    push(services, repo, history.pack())
    for tag in "abc":
        lost_push(services, repo, history, tag, monkeypatch)
    table = dict(table_of(services).items)
    files = dict(bucket_of(services).blobs)

    planned = collector(services).run(dry_run=True)

    assert table_of(services).items == table and bucket_of(services).blobs == files
    done = collector(services).run()
    assert planned.dry_run and not done.dry_run
    assert planned.repositories == done.repositories
    (sweep,) = done.repositories
    assert (sweep.commits, sweep.packs) == (3, 3) and len(sweep.files) == 3
    assert sweep.bytes == sum(len(files[f.key].data) for f in sweep.files)
