"""The CLI as people use git, over real HTTP on the local stack: remotes in the client's format,
fetch and pull, refusals before anything is built or uploaded, and invocations that overlap."""

from __future__ import annotations

import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import boto3
import pytest

from muse_cloud_cli import push as push_module
from muse_cloud_cli.client import MuseCloudClient, Remote
from muse_cloud_cli.main import main
from muse_cloud_cli.push import prepare_push, send_push
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.local_stack import LocalStack
from muse_core.commits import has_commit
from muse_core.refs import list_branches, read_branch_ref, write_branch_ref, write_head

from .conftest import registered

SMALL = Workload(commits=3, files=4, changed_per_commit=1)


def new_repo(local_stack: LocalStack, admin: list[str], name: str) -> str:
    assert main(["repo", "create", f"admin/{name}", "--server", local_stack.api_url, *admin]) == 0
    return f"{local_stack.api_url}/admin/{name}"


def pushed(local_stack: LocalStack, admin: list[str], name: str, root: Path) -> str:
    """A new repository holding ``root``'s main, pushed by URL."""
    remote = new_repo(local_stack, admin, name)
    assert main(["push", "-C", str(root), "--remote", remote, *admin]) == 0
    return remote


def two_clones(
    local_stack: LocalStack, admin: list[str], tmp_path: Path, name: str
) -> tuple[Path, Path]:
    """A new repository and two clones of it, ``ours`` and ``theirs``."""
    source, ours, theirs = tmp_path / "source", tmp_path / "ours", tmp_path / "theirs"
    generate_history(source, SMALL)
    remote = pushed(local_stack, admin, name, source)
    assert main(["clone", remote, str(ours)]) == 0
    assert main(["clone", remote, str(theirs)]) == 0
    return ours, theirs


def tracking(root: Path, branch: str = "main") -> str:
    return (root / ".muse" / "remotes" / "origin" / branch).read_text(encoding="utf-8")


def server_heads(local_stack: LocalStack, name: str) -> dict[str, str]:
    with MuseCloudClient(local_stack.api_url) as client:
        heads: dict[str, str] = client.refs("admin", name)["branch_heads"]
    return heads


def add_commits(root: Path, count: int) -> str:
    """``count`` commits on main past its head, the way the seed workload writes them."""
    start = int(time.time_ns() % 1_000_000) + 1_000
    ids = generate_history(
        root, Workload(commits=count, files=4, changed_per_commit=1), start=start
    )
    return ids[-1]


def test_clone_records_origin_and_a_push_needs_no_flags(
    local_stack: LocalStack, admin: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, copy = tmp_path / "source", tmp_path / "copy"
    generate_history(source, SMALL)
    remote = pushed(local_stack, admin, "noflags", source)
    assert main(["clone", remote, str(copy)]) == 0

    config = tomllib.loads((copy / ".muse" / "config.toml").read_text(encoding="utf-8"))
    assert config["remotes"]["origin"] == {"url": remote, "branch": "main"}
    assert tracking(copy) == list_branches(source)["main"]

    head = add_commits(copy, 2)
    capsys.readouterr()
    assert main(["push", "-C", str(copy), *admin]) == 0
    out = capsys.readouterr().out
    previous = list_branches(source)["main"]
    assert f"   {previous[:8]}..{head[:8]}  main -> main" in out.splitlines()
    assert "written: 2 commits, 2 snapshots" in out
    assert server_heads(local_stack, "noflags") == {"main": head}
    assert tracking(copy) == head


def test_a_remote_added_by_the_muse_client_pushes_with_no_flags(
    local_stack: LocalStack, admin: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file as `muse remote add origin URL` writes it, and `push origin main` as named."""
    generate_history(tmp_path, SMALL)
    remote = new_repo(local_stack, admin, "client-remote")
    (tmp_path / ".muse" / "config.toml").write_text(
        f'[user]\nname = "Alice"\n\n[remotes.origin]\nurl = "{remote}"\n', encoding="utf-8"
    )
    capsys.readouterr()
    assert main(["push", "origin", "main", "-C", str(tmp_path), *admin]) == 0
    assert " * [new branch]      main -> main" in capsys.readouterr().out.splitlines()
    assert server_heads(local_stack, "client-remote") == list_branches(tmp_path)
    assert tracking(tmp_path) == list_branches(tmp_path)["main"]
    # -u records the upstream branch beside the URL; the other settings stay.
    assert main(["push", "-u", "-C", str(tmp_path), *admin]) == 0
    config = tomllib.loads((tmp_path / ".muse" / "config.toml").read_text(encoding="utf-8"))
    assert config == {
        "user": {"name": "Alice"},
        "remotes": {"origin": {"url": remote, "branch": "main"}},
    }


def test_a_push_without_a_remote_says_how_to_add_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate_history(tmp_path, SMALL)
    assert main(["push", "-C", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no_remote: ") and "muse remote add origin URL" in err


def test_fetch_brings_only_what_another_clone_pushed(
    local_stack: LocalStack, admin: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ours, theirs = two_clones(local_stack, admin, tmp_path, "fetching")
    before = list_branches(ours)["main"]
    head = add_commits(theirs, 1)
    assert main(["push", "-C", str(theirs), *admin]) == 0
    capsys.readouterr()

    assert main(["fetch", "-C", str(ours)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"   {before[:8]}..{head[:8]}  main -> origin/main" in out
    # have = the local heads: the pack held the one new commit, nothing the clone had.
    assert "received 1 commit" in " ".join(out)
    assert tracking(ours) == head and has_commit(ours, head)
    assert read_branch_ref(ours, "main") == before

    assert main(["fetch", "-C", str(ours)]) == 0
    assert capsys.readouterr().out.strip() == "already up to date"


def test_pull_fast_forwards_then_stops_when_the_branches_diverge(
    local_stack: LocalStack, admin: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ours, theirs = two_clones(local_stack, admin, tmp_path, "pulling")
    head = add_commits(theirs, 2)
    assert main(["push", "-C", str(theirs), *admin]) == 0
    capsys.readouterr()

    assert main(["pull", "-C", str(ours)]) == 0
    assert "fast-forward main: " in capsys.readouterr().out
    assert read_branch_ref(ours, "main") == head
    files = sorted(p.relative_to(ours).as_posix() for p in (ours / "tracks").iterdir())
    theirs_files = sorted(p.relative_to(theirs).as_posix() for p in (theirs / "tracks").iterdir())
    assert files == theirs_files
    # The clone of `theirs` holds its first checkout; ours holds the new head's files.
    from muse_cloud_cli.compare import check_worktree
    from muse_core.commits import read_commit
    from muse_core.snapshots import read_snapshot

    manifest = read_snapshot(ours, read_commit(ours, head).snapshot_id).manifest
    assert check_worktree(ours, manifest) == []

    ours_only = add_commits(ours, 1)
    add_commits(theirs, 1)
    assert main(["push", "-C", str(theirs), *admin]) == 0
    capsys.readouterr()
    assert main(["pull", "-C", str(ours)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: diverged: ") and "muse merge origin/main" in err
    assert read_branch_ref(ours, "main") == ours_only


def test_pulling_a_branch_not_checked_out_leaves_the_files(
    local_stack: LocalStack, admin: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ours, theirs = two_clones(local_stack, admin, tmp_path, "side-pull")
    base = read_branch_ref(ours, "main")
    assert base is not None
    head = add_commits(theirs, 1)
    assert main(["push", "-C", str(theirs), *admin]) == 0
    write_branch_ref(ours, "work", base)
    write_head(ours, "work")
    files = {p.name: p.read_bytes() for p in (ours / "tracks").iterdir()}
    capsys.readouterr()

    assert main(["pull", "origin", "main", "-C", str(ours)]) == 0
    assert capsys.readouterr().out.strip().endswith(f"fast-forward main: {base[:8]}..{head[:8]}")
    assert read_branch_ref(ours, "main") == head and read_branch_ref(ours, "work") == base
    assert {p.name: p.read_bytes() for p in (ours / "tracks").iterdir()} == files


def _bucket_objects(local_stack: LocalStack) -> int:
    s3 = boto3.client("s3", region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=local_stack.names.bucket)
    return int(listed.get("KeyCount", 0))


def test_a_non_fast_forward_push_is_refused_before_uploading(
    local_stack: LocalStack,
    admin: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours, theirs = two_clones(local_stack, admin, tmp_path, "diverged")
    add_commits(theirs, 1)
    assert main(["push", "-C", str(theirs), *admin]) == 0
    add_commits(ours, 3)
    presigned: list[object] = []
    original = MuseCloudClient.presign

    def counted(self: MuseCloudClient, *args: Any, **kwargs: Any) -> dict[str, Any]:
        presigned.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MuseCloudClient, "presign", counted)
    stored = _bucket_objects(local_stack)
    capsys.readouterr()

    assert main(["push", "-C", str(ours), *admin]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: non_fast_forward: rejected: ") and "fetch first" in err
    assert presigned == [] and _bucket_objects(local_stack) == stored


def test_a_forbidden_push_is_refused_before_building(
    local_stack: LocalStack,
    admin: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    remote = new_repo(local_stack, admin, "not-bobs")
    bob, bob_file = registered(local_stack, "bob-pusher", tmp_path)
    with MuseCloudClient(local_stack.api_url, local_stack.admin) as client:
        assert client.refs("admin", "not-bobs")["permissions"] == {"push": True}
    with MuseCloudClient(local_stack.api_url, bob) as client:
        assert client.refs("admin", "not-bobs")["permissions"] == {"push": False}
    with MuseCloudClient(local_stack.api_url) as anonymous:
        assert "permissions" not in anonymous.refs("admin", "not-bobs")

    def never(*args: object) -> dict[str, Any]:
        raise AssertionError("the pack was built")

    monkeypatch.setattr(push_module, "build_mpack", never)
    generate_history(tmp_path / "repo", SMALL)
    capsys.readouterr()
    push = ["push", "-C", str(tmp_path / "repo"), "--remote", remote, "--identity", str(bob_file)]
    assert main(push) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: forbidden: 'bob-pusher' may not push to admin/not-bobs")


def test_refs_answer_while_a_1000_commit_ingestion_runs(
    local_stack: LocalStack, tmp_path: Path, unpacking: threading.Event
) -> None:
    generate_history(tmp_path, Workload(commits=1000, files=40, changed_per_commit=4))
    assert local_stack.admin is not None
    finished: dict[str, float] = {}
    with MuseCloudClient(local_stack.api_url, local_stack.admin) as client:
        client.create_repo("admin", "busy")
        remote = Remote(local_stack.api_url, "admin", "busy")
        prepared = prepare_push(client, remote, tmp_path)

        def run() -> None:
            send_push(client, remote, prepared)
            finished["push"] = time.monotonic()

        pushing = threading.Thread(target=run)
        pushing.start()
        assert unpacking.wait(60)
        time.sleep(0.3)  # the unpack request is in the API function by now
        asked = time.monotonic()
        with MuseCloudClient(local_stack.api_url, local_stack.admin) as reader:
            assert reader.refs("admin", "busy")["branch_heads"] == {}
        finished["refs"] = time.monotonic()
        pushing.join(300)
    assert finished["refs"] < finished["push"], "refs waited for the ingestion"
    assert finished["refs"] - asked < 2.0
    assert server_heads(local_stack, "busy") == list_branches(tmp_path)


def test_transactions_roll_back_item_by_item_and_stay_fast(local_stack: LocalStack) -> None:
    """moto deep-copied the whole table once per action: this took ~100 table copies."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    table = local_stack.names.table
    with boto3.resource("dynamodb", region_name="us-east-1").Table(table).batch_writer() as batch:
        for n in range(5_000):
            batch.put_item(Item={"pk": f"FILL#{n}", "sk": "FILL", "blob": "x" * 200})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "TX#kept"}, "sk": {"S": "TX"}})
    actions: list[Any] = [
        {"Put": {"TableName": table, "Item": {"pk": {"S": f"TX#{n}"}, "sk": {"S": "TX"}}}}
        for n in range(99)
    ]
    refused: Any = {
        "Put": {
            "TableName": table,
            "Item": {"pk": {"S": "TX#kept"}, "sk": {"S": "TX"}, "changed": {"S": "yes"}},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }
    started = time.perf_counter()
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=[*actions, refused])
    assert time.perf_counter() - started < 3.0
    assert "Item" not in dynamodb.get_item(
        TableName=table, Key={"pk": {"S": "TX#0"}, "sk": {"S": "TX"}}
    )
    kept = dynamodb.get_item(TableName=table, Key={"pk": {"S": "TX#kept"}, "sk": {"S": "TX"}})
    assert "changed" not in kept["Item"]

    started = time.perf_counter()
    dynamodb.transact_write_items(TransactItems=actions)
    assert time.perf_counter() - started < 3.0
    found = dynamodb.get_item(TableName=table, Key={"pk": {"S": "TX#98"}, "sk": {"S": "TX"}})
    assert "Item" in found
