"""A history too large for one pack goes up in several, against a local stack whose pack limits
are small: the server refuses it as one pack and takes it split, moving the branch once per
pack; a pack refused midway leaves the branch at the pack before it, and pushing again ends it."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from histories import commit
from rich.console import Console

from muse_cloud_cli.client import ClientError, MuseCloudClient, Remote
from muse_cloud_cli.compare import compare_repos
from muse_cloud_cli.errors import CliError
from muse_cloud_cli.main import main
from muse_cloud_cli.progress import Reporter
from muse_cloud_cli.push import plan_push, prepare_push, send_push, send_split
from muse_cloud_cli.signer import KeyFile
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.local_stack import LocalStack
from muse_core.limits import Limits
from muse_core.refs import write_branch_ref
from muse_core.repo import init_repo

from .conftest import new_remote

# The server takes 4 commits and 12 objects a pack. The history: a first commit of 6 files,
# then 2 files changed (2 new objects) by each of the 9 after it.
SERVER_LIMITS = Limits(max_commits=4, max_objects=12)
HISTORY = Workload(commits=10, files=6, changed_per_commit=2, blob_bytes=64)


@pytest.fixture(scope="module")
def small_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("stack"), pack_limits=SERVER_LIMITS) as running:
        yield running


@pytest.fixture
def client(small_stack: LocalStack) -> Iterator[MuseCloudClient]:
    with MuseCloudClient(small_stack.api_url, KeyFile.load(small_stack.admin_key_path)) as own:
        yield own


def moves_of(
    client: MuseCloudClient, remote: Remote, count: int, branch: str = "main"
) -> list[dict[str, Any]]:
    """The push events of ``branch`` once ``count`` are published (the outbox is swept after
    each invocation, so they may lag the push by a moment)."""
    deadline = time.monotonic() + 30
    while True:
        events = client.events(remote.owner, remote.name)["events"]
        moves = [e for e in events if e["ref"] == branch]
        if len(moves) >= count or time.monotonic() > deadline:
            return moves
        time.sleep(0.2)


def test_the_server_refuses_one_pack_and_takes_the_split_push(
    small_stack: LocalStack,
    client: MuseCloudClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, copy = tmp_path / "source", tmp_path / "copy"
    ids = generate_history(source, HISTORY)
    remote = new_remote(small_stack, client, "split")

    with pytest.raises(ClientError) as refused:
        send_push(client, remote, prepare_push(client, remote, source, "main"))
    assert (refused.value.code, refused.value.item) == ("limit_exceeded", "commits")
    assert client.refs(remote.owner, remote.name)["branch_heads"] == {}

    identity = ["--identity", str(small_stack.admin_key_path)]
    assert main(["push", "-C", str(source), "--remote", remote.url, *identity]) == 0
    out = capsys.readouterr().out
    assert "10 commits, 10 snapshots, 24 objects, in 3 packs" in out
    # Packs cut after the 4th and the 8th commit: the first holds 6 + 3 x 2 = 12 objects.
    assert " * [new branch]      main -> main" in out
    assert f"   {ids[3][:8]}..{ids[7][:8]}  main -> main" in out
    assert f"   {ids[7][:8]}..{ids[9][:8]}  main -> main" in out
    moves = moves_of(client, remote, 3)
    assert [(m["before"], m["after"], m["forced"]) for m in moves] == [
        (None, ids[3], False),
        (ids[3], ids[7], False),
        (ids[7], ids[9], False),
    ]
    assert [m["counts"]["commits"] for m in moves] == [4, 4, 2]

    assert main(["clone", remote.url, str(copy), *identity]) == 0
    compared = compare_repos(source, copy)
    assert compared.problems == []
    assert (compared.commits, compared.objects) == (10, 24)


def test_a_pack_refused_midway_leaves_the_branch_at_the_one_before_and_a_rerun_ends_it(
    small_stack: LocalStack,
    client: MuseCloudClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, copy = tmp_path / "source", tmp_path / "copy"
    ids = generate_history(source, HISTORY)
    remote = new_remote(small_stack, client, "midway")

    # A budget that knows the server's object limit but not its commit limit: the first pack
    # (4 commits, 12 objects) goes in, the second (6 commits) is refused.
    split = plan_push(client, remote, source, "main", budget=Limits(max_objects=12))
    assert [len(p.commits) for p in split.packs] == [4, 6]
    with pytest.raises(CliError) as failed:
        send_split(client, remote, split)
    assert failed.value.code == "push_incomplete"
    assert "pack 2 of 2 failed (limit_exceeded:" in failed.value.message
    assert f"main on {remote.url} stands at {ids[3][:8]}, where pack 1 left it" in str(failed.value)
    assert client.refs(remote.owner, remote.name)["branch_heads"] == {"main": ids[3]}

    # Again, with the limits the server gives: what it holds is left out.
    identity = ["--identity", str(small_stack.admin_key_path)]
    assert main(["push", "-C", str(source), "--remote", remote.url, *identity]) == 0
    out = capsys.readouterr().out
    assert "6 commits, 6 snapshots, 12 objects, in 2 packs" in out
    assert [(m["before"], m["after"]) for m in moves_of(client, remote, 3)] == [
        (None, ids[3]),
        (ids[3], ids[7]),
        (ids[7], ids[9]),
    ]
    assert main(["clone", remote.url, str(copy), *identity]) == 0
    assert compare_repos(source, copy).problems == []


def test_only_the_first_pack_of_a_forced_push_is_forced(
    small_stack: LocalStack,
    client: MuseCloudClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    old = generate_history(theirs, Workload(commits=2, files=3, changed_per_commit=1), branch="t")
    ids = generate_history(ours, HISTORY, branch="t")
    remote = new_remote(small_stack, client, "forced")

    identity = ["--identity", str(small_stack.admin_key_path)]

    def push(root: Path, branch: str, *extra: str) -> int:
        return main(
            ["push", "-C", str(root), "--remote", remote.url, "--branch", branch, *extra, *identity]
        )

    # The first branch pushed becomes the default, which refuses forced moves.
    write_branch_ref(theirs, "main", old[0])
    assert push(theirs, "main") == 0
    assert push(theirs, "t") == 0
    assert push(ours, "t") == 1
    assert "non_fast_forward" in capsys.readouterr().err
    assert push(ours, "t", "--force") == 0
    assert f" + {old[1][:8]}...{ids[3][:8]} t -> t (forced update)" in capsys.readouterr().out
    moves = moves_of(client, remote, 4, "t")
    assert [(m["after"], m["forced"]) for m in moves] == [
        (old[1], False),
        (ids[3], True),
        (ids[7], False),
        (ids[9], False),
    ]


def test_a_merged_side_branch_goes_whole_in_the_pack_of_its_merge(
    small_stack: LocalStack,
    client: MuseCloudClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, copy = tmp_path / "source", tmp_path / "copy"
    init_repo(source)
    files: dict[str, bytes] = {}

    def on(parents: tuple[str, ...], n: int, **extra: Any) -> str:
        files[f"f{n % 3}.txt"] = f"{n}\n".encode()
        return commit(source, dict(files), f"commit {n}", parents, n, **extra)

    chain = [on((), 0)]
    for n in range(1, 6):
        chain.append(on((chain[-1],), n))
    side = [chain[1]]
    for n in (10, 11, 12):
        side.append(on((side[-1],), n, branch="side"))
    side = side[1:]
    merge = on((chain[-1], side[-1]), 20)
    last = on((merge,), 21)
    write_branch_ref(source, "main", last)
    remote = new_remote(small_stack, client, "merged")

    # Along main's first parents: 4 commits, then 2; the merge brings its 3 side commits (4,
    # the most a pack may hold); the last commit alone.
    split = plan_push(client, remote, source, "main")
    assert [p.head for p in split.packs] == [chain[3], chain[5], merge, last]
    assert {c.commit_id for c in split.packs[2].commits} == {merge, *side}
    identity = ["--identity", str(small_stack.admin_key_path)]
    assert main(["push", "-C", str(source), "--remote", remote.url, *identity]) == 0
    assert "11 commits, 11 snapshots" in capsys.readouterr().out
    assert [m["after"] for m in moves_of(client, remote, 4)] == [chain[3], chain[5], merge, last]
    assert main(["clone", remote.url, str(copy), *identity]) == 0
    assert compare_repos(source, copy).problems == []


def test_one_display_names_the_pack_each_phase_is_for(
    small_stack: LocalStack, client: MuseCloudClient, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    generate_history(source, HISTORY)
    remote = new_remote(small_stack, client, "shown")
    shown = io.StringIO()
    reporter = Reporter(console=Console(file=shown, force_terminal=True, width=200))
    send_split(client, remote, plan_push(client, remote, source, "main"), reporter=reporter)
    for number in (1, 2, 3):
        assert f"pack {number} of 3: building the pack of main" in shown.getvalue()
        assert f"pack {number} of 3: the server is verifying and writing" in shown.getvalue()
