"""Packs that are home to objects never expire, a push record is finished only by the lease
holder, a held snapshot keeps its stored chain, and endless retries end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from core.conftest import commit_tree

from muse_cloud.api.statuses import http_status
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.protection import DEFAULT_BRANCH_PATTERN, UNSET, BranchRule
from muse_cloud.domain.pushes import IngestResult, PushRequest, Refusal
from muse_cloud.domain.repos import Repo
from muse_cloud.services.ingest import MAX_ATTEMPTS
from muse_cloud.storage import dynamo, keys
from muse_cloud.storage.commits import CommitStore
from muse_cloud.storage.layout import UploadKey
from muse_cloud.storage.pack_index import PackIndex
from muse_cloud.storage.pushes import LeaseLost, PushStore
from muse_cloud.storage.refs import RefStore
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import answered, services, stores
from muse_core.commits import write_commit
from muse_core.mpack import build_mpack, encode_mpack
from muse_core.refs import list_branches, write_branch_ref
from muse_core.repo import init_repo

from .test_event_path import upload
from .test_races_and_retries import throttled

SMALL = Workload(commits=2, files=3, changed_per_commit=1)


def small_upload(stack: Provisioned, tmp_path: Path) -> tuple[Repo, UploadKey, bytes]:
    """A new repository and a small history's pack uploaded for it, not yet ingested."""
    repo = stores().repos.create("alice", "songs", "public")
    generate_history(tmp_path, SMALL)
    data = encode_mpack(build_mpack(tmp_path))
    return repo, upload(stack, repo.repo_id, data), data


def tag_of(stack: Provisioned, s3_key: str) -> str:
    tags = boto3.client("s3").get_object_tagging(Bucket=stack.names.bucket, Key=s3_key)
    return {t["Key"]: t["Value"] for t in tags["TagSet"]}["muse-state"]


def put_tagged(stack: Provisioned, s3_key: str, data: bytes) -> None:
    boto3.client("s3").put_object(
        Bucket=stack.names.bucket, Key=s3_key, Body=data, Tagging="muse-state=incoming"
    )


def test_a_second_upload_of_an_ingested_pack_is_tagged_back(
    stack: Provisioned, tmp_path: Path
) -> None:
    _repo, key, data = small_upload(stack, tmp_path)
    assert services().ingest.ingest(key).state == "ok"
    assert tag_of(stack, key.s3_key) == "ingested"

    put_tagged(stack, key.s3_key, data)
    assert tag_of(stack, key.s3_key) == "incoming"
    assert services().ingest.ingest(key).state == "ok"
    assert tag_of(stack, key.s3_key) == "ingested"


def test_a_push_that_loses_the_race_after_writing_keeps_its_pack(
    stack: Provisioned, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _repo, key, data = small_upload(stack, tmp_path)
    put_tagged(stack, key.s3_key, data)
    monkeypatch.setattr(RefStore, "compare_and_swap", lambda *args, **kwargs: False)

    record = services().ingest.ingest(key)

    assert record.state == "failed" and record.error is not None
    assert answered(record)["error"]["code"] == "ref_conflict"
    # Its objects were indexed into this pack before the ref move failed: it must not expire.
    assert tag_of(stack, key.s3_key) == "ingested"


def test_a_pack_ingested_for_one_branch_is_not_reported_for_another(
    stack: Provisioned, tmp_path: Path
) -> None:
    repo = stores().repos.create("alice", "songs", "public")
    generate_history(tmp_path, SMALL)
    head = list_branches(tmp_path)["main"]
    key = upload(stack, repo.repo_id, encode_mpack(build_mpack(tmp_path)))
    assert services().ingest.ingest(key).state == "ok"

    assert services().ingest.ingest(key, PushRequest("main", head)).state == "ok"
    with pytest.raises(ServiceError) as refused:
        services().ingest.ingest(key, PushRequest("release", head))
    assert (http_status(refused.value), refused.value.code) == (409, "push_mismatch")
    assert stores().refs.heads(repo.repo_id) == {"main": head}


def test_only_the_lease_holder_records_the_outcome(stack: Provisioned) -> None:
    repo = stores().repos.create("alice", "songs", "public")
    pushes = stores().pushes
    stale = pushes.claim(repo.repo_id, "a" * 64, "sha256:" + "a" * 64, lease_seconds=-1)
    assert stale is not None
    fresh = pushes.claim(repo.repo_id, "a" * 64, "sha256:" + "a" * 64, lease_seconds=60)
    assert fresh is not None and fresh.lease_token != stale.lease_token

    pushes.release(stale)
    with pytest.raises(LeaseLost):
        pushes.finish(stale, "failed", None, Refusal("x", "late"))
    assert pushes.get(repo.repo_id, "a" * 64) == fresh

    pushes.finish(fresh, "ok", IngestResult(0, 0, 0, 0, ()))
    record = pushes.get(repo.repo_id, "a" * 64)
    assert record is not None and record.state == "ok"


def test_a_push_that_keeps_failing_is_recorded_as_failed(
    stack: Provisioned, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _repo, key, _ = small_upload(stack, tmp_path)
    monkeypatch.setattr(PackIndex, "index", throttled)
    for _ in range(MAX_ATTEMPTS - 1):
        with pytest.raises(Exception, match="ProvisionedThroughputExceeded"):
            services().ingest.ingest(key)

    record = services().ingest.ingest(key)

    assert record.state == "failed" and record.error is not None
    assert answered(record)["error"]["code"] == "ingest_attempts_exhausted"


def test_a_held_snapshot_sent_against_another_base_keeps_its_stored_chain(
    stack: Provisioned, tmp_path: Path
) -> None:
    """Two branches reach the same tree; the second push does not know the first."""
    repo = stores().repos.create("alice", "songs", "public")
    init_repo(tmp_path)
    at = "2026-03-16T12:00:0{}+00:00"
    root = commit_tree(tmp_path, {"a": b"1"}, message="root", committed_at=at.format(0))
    main = commit_tree(
        tmp_path, {"a": b"1", "b": b"2"}, message="m", committed_at=at.format(1),
        parents=(root.commit_id,),
    )  # fmt: skip
    write_branch_ref(tmp_path, "main", main.commit_id)
    assert (
        services()
        .ingest.ingest(upload(stack, repo.repo_id, encode_mpack(build_mpack(tmp_path, ["main"]))))
        .state
        == "ok"
    )

    side = commit_tree(
        tmp_path, {"a": b"1", "c": b"3"}, message="s", committed_at=at.format(2),
        parents=(root.commit_id,), branch="side",
    )  # fmt: skip
    same_as_main = commit_tree(
        tmp_path, {"a": b"1", "b": b"2"}, message="back", committed_at=at.format(3),
        parents=(side.commit_id,), branch="side",
    )  # fmt: skip
    child = commit_tree(
        tmp_path, {"a": b"1", "b": b"2", "d": b"4"}, message="on", committed_at=at.format(4),
        parents=(same_as_main.commit_id,), branch="side",
    )  # fmt: skip
    assert same_as_main.snapshot_id == main.snapshot_id
    write_commit(tmp_path, child)
    write_branch_ref(tmp_path, "side", child.commit_id)
    pack = build_mpack(tmp_path, ["side"], have=[root.commit_id])
    resent = {s["snapshot_id"]: s for s in pack["snapshots"]}[main.snapshot_id]
    assert resent["parent_snapshot_id"] == side.snapshot_id  # not the base the server stored

    record = services().ingest.ingest(upload(stack, repo.repo_id, encode_mpack(pack)))

    assert record.state == "ok", record.error
    snapshots = stores().snapshots
    assert snapshots.manifest(repo.repo_id, child.snapshot_id) is not None
    assert snapshots.manifest(repo.repo_id, main.snapshot_id) is not None


def test_a_branch_cannot_nest_under_an_existing_one(stack: Provisioned, tmp_path: Path) -> None:
    repo = stores().repos.create("alice", "songs", "public")
    generate_history(tmp_path, SMALL)
    head = list_branches(tmp_path)["main"]
    assert (
        services()
        .ingest.ingest(upload(stack, repo.repo_id, encode_mpack(build_mpack(tmp_path))))
        .state
        == "ok"
    )
    write_branch_ref(tmp_path, "main2", head)  # another pack, same commits
    nested = build_mpack(tmp_path, {"main/x": head}, have=[head])

    record = services().ingest.ingest(upload(stack, repo.repo_id, encode_mpack(nested)))

    assert record.state == "failed" and record.error is not None
    assert answered(record)["error"]["code"] == "branch_name_conflict"
    assert stores().refs.heads(repo.repo_id) == {"main": head}


def test_a_forced_rerun_does_not_undo_a_push_made_while_it_was_interrupted(
    stack: Provisioned, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = stores().repos.create("alice", "songs", "public")
    allowed = (BranchRule(DEFAULT_BRANCH_PATTERN, force_push=True),)
    assert stores().protection.replace(repo.repo_id, allowed, UNSET) is not None
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    generate_history(ours, SMALL)
    generate_history(theirs, Workload(commits=3, files=2, changed_per_commit=1))
    base = upload(stack, repo.repo_id, encode_mpack(build_mpack(ours)))
    assert services().ingest.ingest(base).state == "ok"
    forced = upload(stack, repo.repo_id, encode_mpack(build_mpack(theirs)))
    request = PushRequest("main", list_branches(theirs)["main"], force=True)
    monkeypatch.setattr(RefStore, "compare_and_swap", crash)
    with pytest.raises(RuntimeError):
        services().ingest.ingest(forced, request)
    monkeypatch.undo()
    generate_history(ours, SMALL, start=2)
    assert (
        services().ingest.ingest(upload(stack, repo.repo_id, encode_mpack(build_mpack(ours)))).state
        == "ok"
    )

    rerun = services().ingest.ingest(forced, request)

    assert rerun.state == "failed" and rerun.error is not None
    assert answered(rerun)["error"]["code"] == "ref_conflict"
    assert stores().refs.heads(repo.repo_id) == list_branches(ours)


def crash(*args: object, **kwargs: object) -> bool:
    raise RuntimeError("crash before the ref moved")


@pytest.mark.parametrize(
    ("reasons", "is_condition"),
    [
        ([{"Code": "ConditionalCheckFailed"}], True),
        ([{"Code": "None"}, {"Code": "ConditionalCheckFailed"}], True),
        ([{"Code": "TransactionConflict"}], False),
        ([{"Code": "ConditionalCheckFailed"}, {"Code": "TransactionConflict"}], False),
        ([{"Code": "ThrottlingError"}], False),
    ],
)
def test_only_failed_conditions_count_as_lost_compare_and_swap(
    reasons: list[dict[str, str]], is_condition: bool
) -> None:
    response: Any = {
        "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
        "CancellationReasons": reasons,
    }
    error = ClientError(response, "TransactWriteItems")
    assert (dynamo.condition_failure(error) is not None) is is_condition


def test_values_too_large_for_an_item_live_in_s3(stack: Provisioned, tmp_path: Path) -> None:
    """A 400 KB commit message and a 1,500-path delta with long paths exceed DynamoDB's item
    size: both are stored in S3 and read back whole."""
    repo = stores().repos.create("alice", "songs", "public")
    init_repo(tmp_path)
    at = "2026-03-16T12:00:0{}+00:00"
    root = commit_tree(tmp_path, {"a": b"1"}, message="root", committed_at=at.format(0))
    wide = {"a": b"1"} | {f"{'d' * 240}/{n:05d}": str(n).encode() for n in range(1500)}
    big = commit_tree(
        tmp_path, wide, message="m" * 400_000, committed_at=at.format(1),
        parents=(root.commit_id,),
    )  # fmt: skip
    write_branch_ref(tmp_path, "main", big.commit_id)

    record = services().ingest.ingest(
        upload(stack, repo.repo_id, encode_mpack(build_mpack(tmp_path)))
    )

    assert record.state == "ok", record.error
    assert answered(record)["s3_requests"] >= 5  # get, index, tag, the record, the delta
    repo_stores = stores()
    stored = repo_stores.commits.get(repo.repo_id, big.commit_id)
    assert stored is not None and stored.record.to_dict() == big.to_dict()
    item = stores().table.get(keys.snapshot(repo.repo_id, big.snapshot_id))
    assert item is not None and "delta_key" in item and "delta" not in item
    manifest = repo_stores.snapshots.manifest(repo.repo_id, big.snapshot_id)
    assert manifest is not None and len(manifest) == 1501


def test_a_failed_outcome_write_gives_the_lease_back(
    stack: Provisioned, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, key, _ = small_upload(stack, tmp_path)
    real_put = PushStore._put

    def throttled_once(store: PushStore, record: Any, condition: Any) -> None:
        if record.state == "ok":
            monkeypatch.setattr(PushStore, "_put", real_put)
            throttled()
        real_put(store, record, condition)

    monkeypatch.setattr(PushStore, "_put", throttled_once)
    with pytest.raises(ClientError):
        services().ingest.ingest(key)
    interrupted = stores().pushes.get(repo.repo_id, key.mpack_hex)
    assert interrupted is not None and interrupted.state == "pending"

    assert services().ingest.ingest(key).state == "ok"


def test_an_oversized_offending_item_is_recorded_clipped(
    stack: Provisioned, tmp_path: Path
) -> None:
    repo = stores().repos.create("alice", "songs", "public")
    generate_history(tmp_path, SMALL)
    pack = build_mpack(tmp_path)
    pack["mpack_version"] = "x" * 500_000

    record = services().ingest.ingest(upload(stack, repo.repo_id, encode_mpack(pack)))

    assert record.state == "failed" and record.error is not None
    assert answered(record)["error"]["code"] == "unsupported_version"
    assert len(answered(record)["error"]["item"]) <= 200


def test_a_rerun_refused_at_the_refs_still_completes_the_writes_it_began(
    stack: Provisioned, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, key, _data = small_upload(stack, tmp_path)
    real_put_many = CommitStore.put_many
    monkeypatch.setattr(CommitStore, "put_many", crash)
    with pytest.raises(RuntimeError):
        services().ingest.ingest(key)
    monkeypatch.setattr(CommitStore, "put_many", real_put_many)
    # Meanwhile another history took the branch: the rerun's ref move is refused.
    other = tmp_path / "other"
    generate_history(other, Workload(commits=3, files=2, changed_per_commit=1))
    assert (
        services()
        .ingest.ingest(upload(stack, repo.repo_id, encode_mpack(build_mpack(other))))
        .state
        == "ok"
    )

    rerun = services().ingest.ingest(key)

    assert rerun.error is not None and answered(rerun)["error"]["code"] == "non_fast_forward"
    head = list_branches(tmp_path)["main"]
    stored = stores().commits.get(repo.repo_id, head)
    assert stored is not None, "the rerun finished writing the commits its first run began"
