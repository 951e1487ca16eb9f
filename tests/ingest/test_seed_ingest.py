"""The protocol's seed workload (1,031 commits x 700 files, 5 changed per commit) through the
event path: S3 PUT -> SQS notification -> unpack handler, then an incremental push on top."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from muse_cloud.storage import dynamo, keys
from muse_cloud.storage.commits import ANCESTOR_HINTS
from muse_cloud.storage.snapshots import CHAIN_LIMIT
from muse_cloud_cli.workload import SEED, Workload, generate_history
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import answered, dynamodb, stores
from muse_core.commits import read_commit
from muse_core.mpack import build_mpack, encode_mpack
from muse_core.snapshots import read_snapshot

from .test_event_path import event_source, upload


@dataclass(frozen=True)
class SeedHistory:
    root: Path
    ids: list[str]  # the seed's 1,031 commits, oldest first
    more: list[str]  # the 3 commits of the second push
    data: bytes  # the seed pack
    next_pack: dict[str, Any]  # the second push, built against the seed's head
    next_data: bytes


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> SeedHistory:
    root = tmp_path_factory.mktemp("seed")
    ids = generate_history(root, SEED)
    data = encode_mpack(build_mpack(root, ["main"]))
    more = generate_history(root, Workload(commits=3), start=SEED.commits)
    next_pack = build_mpack(root, ["main"], have=[ids[-1]])
    return SeedHistory(root, ids, more, data, next_pack, encode_mpack(next_pack))


class DynamoReads:
    """Counts what the DynamoDB client reads: requests and the items they ask for."""

    def __init__(self) -> None:
        self.requests = 0
        self.items = 0

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params["body"] or b"{}")
        if "RequestItems" in body:  # BatchGetItem
            self.requests += 1
            self.items += sum(len(r["Keys"]) for r in body["RequestItems"].values())
        elif "Key" in body:  # GetItem
            self.requests += 1
            self.items += 1


@pytest.fixture
def dynamo_reads(stack: Provisioned) -> Iterator[DynamoReads]:
    counter = DynamoReads()
    events = dynamodb().meta.events
    for operation in ("GetItem", "BatchGetItem", "Query", "Scan"):
        events.register(f"before-call.dynamodb.{operation}", counter)
    yield counter
    for operation in ("GetItem", "BatchGetItem", "Query", "Scan"):
        events.unregister(f"before-call.dynamodb.{operation}", counter)


def test_seed_workload_then_incremental_push(
    stack: Provisioned, seed: SeedHistory, dynamo_reads: DynamoReads
) -> None:
    repo = stores().repos.create("alice", "seed", "public")
    repo_id = repo.repo_id
    repo_stores = stores()
    old_head = seed.ids[-1]

    # --- the whole seed history in one pack
    key = upload(stack, repo_id, seed.data)
    assert event_source(stack).drain() == (2, 0)  # the s3:TestEvent, then the upload

    assert stores().refs.heads(repo_id) == {"main": old_head}
    record = stores().pushes.get(repo_id, key.mpack_hex)
    assert record is not None and record.state == "ok", record
    assert record.error is None
    files, changed = SEED.files, SEED.changed_per_commit
    assert answered(record)["commits_written"] == 1031
    assert answered(record)["snapshots_written"] == 1031
    assert answered(record)["objects_written"] == files + (SEED.commits - 1) * changed
    assert answered(record)["bytes"] == len(seed.data)
    assert (answered(record)["head"], answered(record)["previous_head"]) == (old_head, None)

    # Commits read back equal the client's records, with their generation numbers.
    sample = sorted({0, 1, 50, 51, 517, 1030, *random.Random(7).sample(range(1031), 40)})
    stored = repo_stores.commits.get_many(repo_id, [seed.ids[i] for i in sample])
    assert len(stored) == len(sample)
    for index in sample:
        commit = stored[seed.ids[index]]
        assert commit.record.to_dict() == read_commit(seed.root, seed.ids[index]).to_dict()
        assert commit.generation == index + 1

    # Each commit lists its next first-parent ancestors, back to the nearest one that lists
    # ANCESTOR_HINTS: 0, 1, ..., 32, 1, ..., 32 from the root, half the bytes of full lists.
    lineages = repo_stores.commits.lineages(repo_id, seed.ids)
    for index, commit_id in enumerate(seed.ids):
        hints = lineages[commit_id].ancestors
        assert len(hints) == (0 if index == 0 else (index - 1) % ANCESTOR_HINTS + 1), index
        assert list(hints) == seed.ids[index - 1 :: -1][: len(hints)], index

    # Stored snapshot chains: every delta names its parent first and ends at a checkpoint, and
    # none is longer than CHAIN_LIMIT, so a rebuild reads at most 50 deltas + 1 checkpoint.
    in_order = [read_commit(seed.root, cid).snapshot_id for cid in seed.ids]
    parent_of = dict(zip(in_order[1:], in_order[:-1], strict=True))
    snapshot_ids = set(in_order)
    snaps = {
        item["pk"].rsplit("#", 1)[1]: item
        for item in stores().table.get_many(keys.snapshot(repo_id, sid) for sid in snapshot_ids)
    }
    assert len(snaps) == len(snapshot_ids) == 1031
    checkpoints = {sid for sid, item in snaps.items() if not item.get("chain")}
    assert len(checkpoints) == math.ceil(1031 / (CHAIN_LIMIT + 1))  # one every 51 snapshots
    for sid, item in snaps.items():
        chain = list(dynamo.unpack_ids(item.get("chain")))
        assert len(chain) <= CHAIN_LIMIT, sid
        if sid in checkpoints:
            assert chain == [] and ("manifest" in item or "manifest_key" in item)
        else:
            assert chain[0] == parent_of[sid] and chain[-1] in checkpoints
            assert not set(chain[:-1]) & checkpoints
    assert max(len(dynamo.unpack_ids(item.get("chain"))) for item in snaps.values()) == CHAIN_LIMIT

    # Rebuilt manifests equal the client's, and each rebuild reads one bounded chain.
    for index in (0, 50, 517, 1019, 1030):
        sid = read_commit(seed.root, seed.ids[index]).snapshot_id
        dynamo_reads.requests = dynamo_reads.items = 0
        manifest = repo_stores.snapshots.manifest(repo_id, sid)
        assert manifest == read_snapshot(seed.root, sid).manifest, index
        assert len(manifest) == files
        assert dynamo_reads.requests <= 2, index
        assert (
            dynamo_reads.items
            == 1 + len(dynamo.unpack_ids(snaps[sid].get("chain")))
            <= CHAIN_LIMIT + 1
        )

    # --- a second push on top: only what the server lacks, delta-encoded against what it holds
    pack = seed.next_pack
    assert [c["commit_id"] for c in pack["commits"]] == seed.more
    assert len(pack["snapshots"]) == 3
    assert all(s["parent_snapshot_id"] is not None for s in pack["snapshots"])
    held_base = read_commit(seed.root, old_head).snapshot_id
    assert pack["snapshots"][0]["parent_snapshot_id"] == held_base
    assert repo_stores.snapshots.known(repo_id, [held_base]) == {held_base}
    assert all(len(s["delta_upsert"]) == changed for s in pack["snapshots"])
    assert len(pack["objects"]) == 3 * changed

    next_key = upload(stack, repo_id, seed.next_data)
    assert event_source(stack).drain() == (1, 0)

    assert stores().refs.heads(repo_id) == {"main": seed.more[-1]}
    record = stores().pushes.get(repo_id, next_key.mpack_hex)
    assert record is not None and record.state == "ok", record
    assert answered(record)["commits_written"] == 3
    assert answered(record)["snapshots_written"] == 3
    assert answered(record)["objects_written"] == 3 * changed
    assert answered(record)["previous_head"] == old_head
    assert answered(record)["head"] == seed.more[-1]
    new_snapshots: set[str] = set()
    for offset, cid in enumerate(seed.more):
        held = repo_stores.commits.get(repo_id, cid)
        assert held is not None
        assert held.record.to_dict() == read_commit(seed.root, cid).to_dict()
        assert held.generation == SEED.commits + offset + 1
        sid = held.record.snapshot_id
        new_snapshots.add(sid)
        assert (
            repo_stores.snapshots.manifest(repo_id, sid) == read_snapshot(seed.root, sid).manifest
        )
    # Everything of both pushes is held.
    every = [*seed.ids, *seed.more]
    assert repo_stores.commits.known(repo_id, every) == set(every)
    assert repo_stores.snapshots.known(repo_id, new_snapshots) == new_snapshots
