"""``muse-cloud push`` against the local stack over real HTTP prints a ref move only when the
server's answer shows that this push made it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from muse_cloud_cli.client import MuseCloudClient, Remote
from muse_cloud_cli.errors import CliError
from muse_cloud_cli.main import main
from muse_cloud_cli.push import PreparedPush, send_push
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.local_stack import LocalStack
from muse_core.mpack import build_mpack, encode_mpack
from muse_core.refs import list_branches


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("stack")) as running:
        yield running


def identity(stack: LocalStack) -> list[str]:
    return ["--identity", str(stack.admin_key_path)]


def diverged(stack: LocalStack, tmp_path: Path, name: str) -> tuple[Path, Path, str]:
    """``ours`` pushed main, then ``theirs`` forced main onto a history ours lacks."""
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    generate_history(ours, Workload(commits=3, files=4, changed_per_commit=1))
    generate_history(theirs, Workload(commits=2, files=5, changed_per_commit=1))
    admin = identity(stack)
    remote = f"{stack.api_url}/admin/{name}"
    assert main(["repo", "create", f"admin/{name}", "--server", stack.api_url, *admin]) == 0
    # The default branch refuses force pushes until its rule allows them.
    assert main(["protect", "set", remote, ":default", "--force-push", "allow", *admin]) == 0
    assert main(["push", str(ours), "--remote", remote, *admin]) == 0
    assert main(["push", str(theirs), "--remote", remote, "--force", *admin]) == 0
    return ours, theirs, remote


def heads_of(stack: LocalStack, name: str) -> dict[str, str]:
    assert stack.admin is not None
    with MuseCloudClient(stack.api_url, stack.admin) as client:
        heads: dict[str, str] = client.refs("admin", name)["branch_heads"]
    return heads


def test_forcing_a_branch_back_to_an_earlier_push_moves_it_and_says_so(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ours, theirs, remote = diverged(stack, tmp_path, "rollback")
    capsys.readouterr()
    ours_head, theirs_head = list_branches(ours)["main"], list_branches(theirs)["main"]

    code = main(["push", str(ours), "--remote", remote, "--force", *identity(stack)])

    assert code == 0
    moved = f" + {theirs_head[:8]}...{ours_head[:8]} main -> main (forced update)"
    assert moved in capsys.readouterr().out.splitlines()
    assert heads_of(stack, "rollback") == {"main": ours_head}


def test_an_answer_recorded_for_an_earlier_push_is_not_reported_as_a_move(
    stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pack is in place and its ref still there at presign, then another push moves the
    ref away before unpack-mpack: the answer is the earlier push's recorded result."""
    ours, theirs, remote_url = diverged(stack, tmp_path, "stale")
    ours_head, theirs_head = list_branches(ours)["main"], list_branches(theirs)["main"]
    assert main(["push", str(ours), "--remote", remote_url, "--force", *identity(stack)]) == 0
    pack = build_mpack(ours, {"main": ours_head})
    prepared = PreparedPush("main", ours_head, ours_head, [], pack, encode_mpack(pack), 0.0)
    remote = Remote.parse(remote_url)
    assert stack.admin is not None
    with MuseCloudClient(stack.api_url, stack.admin) as client:
        real_presign = client.presign

        def presign_then_someone_forces(*args: Any, **kwargs: Any) -> dict[str, Any]:
            ticket = real_presign(*args, **kwargs)
            monkeypatch.setattr(client, "presign", real_presign)
            assert (
                main(["push", str(theirs), "--remote", remote_url, "--force", *identity(stack)])
                == 0
            )
            return ticket

        monkeypatch.setattr(client, "presign", presign_then_someone_forces)
        with pytest.raises(CliError) as refused:
            send_push(client, remote, prepared, force=False)

    assert refused.value.code == "push_not_applied"
    assert heads_of(stack, "stale") == {"main": theirs_head}
