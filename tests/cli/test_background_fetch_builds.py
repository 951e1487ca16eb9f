"""Fetch packs built by the unpack workers, as a pack too long to build in one API call is: a
local stack that gives an API call no time to build one. The API hands the build over through
an object the bucket notifies the unpack function of (template.yaml's notification, over moto's
S3 and SQS), and the CLI asks about the build until the pack is there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from histories import commit

from muse_cloud_cli.client import ClientError, MuseCloudClient, Remote
from muse_cloud_cli.compare import compare_repos
from muse_cloud_cli.main import main
from muse_cloud_cli.remotes import read_tracking
from muse_cloud_cli.signer import KeyFile
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.local_stack import LocalStack
from muse_core.refs import write_branch_ref

from .conftest import new_remote

HISTORY = Workload(commits=6, files=5, changed_per_commit=2, blob_bytes=64)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("stack"), fetch_build_seconds=-1) as running:
        yield running


@pytest.fixture
def client(stack: LocalStack) -> Iterator[MuseCloudClient]:
    with MuseCloudClient(stack.api_url, KeyFile.load(stack.admin_key_path)) as own:
        yield own


def pushed(stack: LocalStack, client: MuseCloudClient, source: Path, name: str) -> Remote:
    remote = new_remote(stack, client, name)
    identity = ["--identity", str(stack.admin_key_path)]
    assert main(["push", "-C", str(source), "--remote", remote.url, *identity]) == 0
    return remote


def test_clone_and_fetch_wait_for_packs_built_in_the_background(
    stack: LocalStack,
    client: MuseCloudClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, copy = tmp_path / "source", tmp_path / "copy"
    ids = generate_history(source, HISTORY)
    remote = pushed(stack, client, source, "songs")

    asked = client._json("POST", "/admin/songs/fetch/mpack", {"want": [], "have": []})
    # No time in the call: handed over, whatever the clone below finds when it asks.
    assert (asked["status"], asked["retry_after_seconds"]) == ("building", 2)
    assert asked.get("download_url") is None and asked["build_id"]
    identity = ["--identity", str(stack.admin_key_path)]
    assert main(["clone", remote.url, str(copy), *identity]) == 0
    compared = compare_repos(source, copy)
    assert compared.problems == []
    assert (compared.commits, compared.objects) == (6, 5 + 5 * 2)
    # The build the first call handed over is the pack the clone got: asked again, it is ready.
    built = client._json("GET", f"/admin/songs/fetch/builds/{asked['build_id']}")
    assert built["status"] == "ready" and built["commits"] == 6
    assert built["branch_heads"] == {"main": ids[-1]}

    # A fetch with what the clone has: its pack is handed over too.
    late = commit(source, {"late.txt": b"pushed after the clone"}, "late", (ids[-1],), minute=99)
    write_branch_ref(source, "main", late)
    assert main(["push", "-C", str(source), "--remote", remote.url, *identity]) == 0
    capsys.readouterr()
    assert main(["fetch", "-C", str(copy), *identity]) == 0
    assert "received 1 commit " in capsys.readouterr().out
    assert read_tracking(copy, "origin") == {"main": late}


def test_a_build_nobody_asked_for_is_not_found(
    stack: LocalStack, client: MuseCloudClient, tmp_path: Path
) -> None:
    generate_history(tmp_path / "source", HISTORY)
    pushed(stack, client, tmp_path / "source", "quiet")
    with pytest.raises(ClientError) as missing:
        client._json("GET", "/admin/quiet/fetch/builds/" + "0" * 64)
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    answer = requests.get(f"{stack.api_url}/admin/quiet/fetch/builds/not-an-id", timeout=10)
    assert answer.status_code == 422
    assert (answer.json()["code"], answer.json()["item"]) == ("invalid_id", "'not-an-id'")
