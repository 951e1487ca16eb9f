"""The CLI over real HTTP against answers that outgrow a Lambda response: `muse-cloud log` pages
through a history of 1 MiB messages, and the client follows the redirect of a commit or a
snapshot over the budget to the same document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from histories import commit

from muse_cloud.services.history import RESPONSE_BUDGET_BYTES, wire_bytes
from muse_cloud_cli.client import MuseCloudClient
from muse_cloud_cli.main import main
from muse_cloud_cli.signer import KeyFile
from muse_cloud_dev.local_stack import LocalStack
from muse_core.limits import MIB
from muse_core.refs import write_branch_ref
from muse_core.repo import init_repo
from muse_core.snapshot import compute_snapshot_id


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("stack")) as running:
        yield running


def pushed(stack: LocalStack, source: Path, name: str) -> str:
    admin = ["--identity", str(stack.admin_key_path)]
    assert main(["repo", "create", f"admin/{name}", "--server", stack.api_url, *admin]) == 0
    remote = f"{stack.api_url}/admin/{name}"
    assert main(["push", str(source), "--remote", remote, *admin]) == 0
    return remote


def test_log_lists_every_commit_of_huge_messages(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source"
    init_repo(source)
    parents: tuple[str, ...] = ()
    for n in range(5):
        message = f"take {n}\n" + "la " * ((MIB - 64) // 3)
        parents = (commit(source, {"a.txt": str(n).encode()}, message, parents, n),)
    write_branch_ref(source, "main", parents[0])
    remote = pushed(stack, source, "loud")
    capsys.readouterr()

    assert main(["log", remote, "--limit", "20"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in lines] == ["4", "3", "2", "1", "0"]


def test_the_client_follows_big_answers_to_their_url(stack: LocalStack, tmp_path: Path) -> None:
    source = tmp_path / "source"
    init_repo(source)
    files = {
        f"tracks/album-{n % 40:02d}/a-long-song-title-{n:05d}.mid": b"s" for n in range(30_000)
    }
    root = commit(source, files, "many files", (), 0)
    quoted = commit(source, {"a.txt": b"a"}, '"' * (MIB - 16), (root,), 1)
    write_branch_ref(source, "main", quoted)
    pushed(stack, source, "big")

    with MuseCloudClient(stack.api_url, KeyFile.load(stack.admin_key_path)) as client:
        record = client.commit("admin", "big", quoted)
        assert record["message"] == '"' * (MIB - 16)
        assert wire_bytes(record) > RESPONSE_BUDGET_BYTES
        snapshot_id = client.commit("admin", "big", root)["snapshot_id"]
        snapshot = client.snapshot("admin", "big", snapshot_id)
    assert wire_bytes(snapshot) > RESPONSE_BUDGET_BYTES
    assert len(snapshot["manifest"]) == 30_000
    assert compute_snapshot_id(snapshot["manifest"]) == snapshot_id
