"""``muse-cloud gc`` over real HTTP on the local stack: a dry run lists what a pass deletes and
the bytes, the pass deletes it, a pass while a push is being ingested leaves that repository
alone, and clones after every pass hold everything."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from muse_cloud_cli.client import MuseCloudClient
from muse_cloud_cli.compare import compare_repos
from muse_cloud_cli.gc import collect_garbage
from muse_cloud_cli.main import main
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.local_stack import LocalStack

from .conftest import registered

SMALL = Workload(commits=3, files=4, changed_per_commit=1)


def _overwritten(local_stack: LocalStack, admin: list[str], tmp_path: Path, name: str) -> Path:
    """A repository whose main was pushed, then force-pushed to an unrelated history: the
    first push's pack is what no ref reaches. Answers the history the server holds."""
    first, second = tmp_path / f"{name}-first", tmp_path / f"{name}-second"
    generate_history(first, SMALL)
    generate_history(second, Workload(commits=4, files=3, changed_per_commit=2))
    assert main(["repo", "create", f"admin/{name}", "--server", local_stack.api_url, *admin]) == 0
    remote = f"{local_stack.api_url}/admin/{name}"
    assert main(["push", "-q", "-C", str(first), "--remote", remote, *admin]) == 0
    # The default branch refuses force pushes until a rule allows them.
    assert main(["protect", "set", remote, ":default", "--force-push", "allow", *admin]) == 0
    assert main(["push", "-q", "-C", str(second), "--remote", remote, "--force", *admin]) == 0
    return second


def _gc(local_stack: LocalStack, admin: list[str], *options: str) -> int:
    return main(["gc", "--server", local_stack.api_url, "--grace", "0", *admin, *options])


def _clone_matches(local_stack: LocalStack, name: str, source: Path, into: Path) -> None:
    assert main(["clone", "-q", f"{local_stack.api_url}/admin/{name}", str(into)]) == 0
    comparison = compare_repos(source, into)
    assert comparison.matched, comparison.problems


def test_a_dry_run_lists_the_files_and_bytes_then_the_pass_deletes_them(
    local_stack: LocalStack, admin: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    held = _overwritten(local_stack, admin, tmp_path, "gc-dry")
    capsys.readouterr()

    assert _gc(local_stack, admin, "--dry-run", "--repo", "admin/gc-dry") == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith(
        "admin/gc-dry: swept, would delete 7 items (3 commits, 3 snapshots, 1 pack) "
    )
    assert "and 1 file of " in listed[0]
    size, key = listed[1].split()
    assert key.startswith("incoming/") and key.endswith(".mpack") and int(size.replace(",", ""))
    assert listed[-1].startswith(f"would delete 7 items and {size} bytes in ")

    assert _gc(local_stack, admin, "--repo", "admin/gc-dry") == 0
    done = capsys.readouterr().out.splitlines()
    assert done[0].startswith(
        "admin/gc-dry: swept, deleted 7 items (3 commits, 3 snapshots, 1 pack) "
    )
    assert done[-1].startswith(f"deleted 7 items and {size} bytes in ")
    assert _gc(local_stack, admin, "--repo", "admin/gc-dry") == 0
    assert capsys.readouterr().out.startswith("admin/gc-dry: clean\n")
    _clone_matches(local_stack, "gc-dry", held, tmp_path / "clone")


def test_only_an_admin_collects_garbage(
    local_stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, key_file = registered(local_stack, "walt-gc", tmp_path)

    assert _gc(local_stack, ["--identity", str(key_file)], "--dry-run") == 1
    assert capsys.readouterr().err.startswith("error: forbidden: only an admin may collect")


def test_a_pass_while_a_push_is_ingested_leaves_that_repository_whole(
    local_stack: LocalStack, admin: list[str], tmp_path: Path, unpacking: threading.Event
) -> None:
    held = _overwritten(local_stack, admin, tmp_path, "gc-busy")
    # Long enough to ingest (about 0.5 s) that passes called back to back meet it.
    generate_history(held, Workload(commits=1_000, files=40, changed_per_commit=4), start=1_000)
    pushed: list[int] = []
    remote = f"{local_stack.api_url}/admin/gc-busy"
    pushing = threading.Thread(
        target=lambda: pushed.append(
            main(["push", "-q", "-C", str(held), "--remote", remote, *admin])
        )
    )
    pushing.start()
    assert unpacking.wait(120)
    outcomes = []
    # The client's own call (the push prints as it goes: the pass's lines would mix in).
    with MuseCloudClient(local_stack.api_url, local_stack.admin) as client:
        while pushing.is_alive():
            answer = collect_garbage(client, False, "admin/gc-busy", 0)
            outcomes += [r["outcome"] for r in answer["repositories"]]
    pushing.join()

    assert pushed == [0]
    assert "busy" in outcomes, outcomes
    assert set(outcomes) <= {"busy", "swept", "clean"}
    _clone_matches(local_stack, "gc-busy", held, tmp_path / "during")
    assert _gc(local_stack, admin) == 0
    _clone_matches(local_stack, "gc-busy", held, tmp_path / "after")
