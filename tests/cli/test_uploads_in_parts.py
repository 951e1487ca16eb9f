"""Packs uploaded in parts over real HTTP on the local stack (moto's S3 in server mode, which
checks part ETags and the 5 MiB minimum of every part but the last when parts are joined): a
failed part sent again, a push killed mid-upload resumed with only the missing parts, each
ingested and cloned back whole; and what the owner sees of the bytes stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from histories import commit

from cli.test_local_stack import muse_files
from muse_cloud_cli.client import MuseCloudClient, Remote
from muse_cloud_cli.main import main
from muse_cloud_cli.push import prepare_push, send_push
from muse_cloud_cli.signer import KeyFile
from muse_cloud_dev.local_stack import LocalStack
from muse_core.refs import write_branch_ref
from muse_core.repo import init_repo

MIB = 1024 * 1024
# S3's (and moto's) smallest part: a 12 MiB pack goes up in 3 parts.
PART = 5 * MIB
BLOCKED_PUSH = Path(__file__).with_name("blocked_push.py")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A local stack whose API cuts every pack over 5 MiB into 5 MiB parts (its worker
    processes read the settings from the environment they start with)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MUSE_MULTIPART_THRESHOLD_BYTES", str(PART))
        env.setenv("MUSE_MULTIPART_PART_BYTES", str(PART))
        with LocalStack(tmp_path_factory.mktemp("stack")) as running:
            yield running


class PartPuts(requests.Session):
    """Counts the PUTs of each part; the first ``fail_first`` PUTs of a part number drop the
    connection before anything is sent."""

    def __init__(self, fail_first: dict[int, int] | None = None) -> None:
        super().__init__()
        self.fail_first = dict(fail_first or {})
        self.puts: Counter[int] = Counter()

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        query = parse_qs(urlsplit(str(url)).query)
        if method == "PUT" and "partNumber" in query:
            number = int(query["partNumber"][0])
            self.puts[number] += 1
            if self.puts[number] <= self.fail_first.get(number, 0):
                raise requests.ConnectionError(f"connection reset sending part {number}")
        return super().request(method, url, *args, **kwargs)


def big_repo(root: Path) -> int:
    """A repository whose pack is about 12 MiB of incompressible takes; the files' bytes."""
    init_repo(root)
    files = {f"takes/{n}.wav": os.urandom(4 * MIB) for n in range(3)}
    first = commit(root, files, "three takes", (), 0)
    head = commit(root, {**files, "notes.txt": b"keep take 2"}, "notes", (first,), 1)
    write_branch_ref(root, "main", head)
    return sum(len(data) for data in files.values())


def new_repo(stack: LocalStack, name: str) -> Remote:
    key = ["--identity", str(stack.admin_key_path)]
    assert main(["repo", "create", f"admin/{name}", "--server", stack.api_url, *key]) == 0
    return Remote.parse(f"{stack.api_url}/admin/{name}")


def pushed(stack: LocalStack, remote: Remote, source: Path, session: PartPuts) -> dict[str, Any]:
    """``muse-cloud push``'s own steps, through ``session``."""
    with MuseCloudClient(remote.base_url, KeyFile.load(stack.admin_key_path), session) as client:
        return send_push(client, remote, prepare_push(client, remote, source)).answer


def open_uploads(stack: LocalStack) -> list[dict[str, Any]]:
    s3 = boto3.client("s3", endpoint_url=stack.moto_url, region_name="us-east-1")
    listed = s3.list_multipart_uploads(Bucket=stack.names.bucket).get("Uploads", [])
    return [
        {
            "key": upload["Key"],
            "parts": [
                p["PartNumber"]
                for p in s3.list_parts(
                    Bucket=stack.names.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                ).get("Parts", [])
            ],
        }
        for upload in listed
    ]


def test_a_failed_part_is_sent_again_and_the_pack_lands_whole(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source"
    taken = big_repo(source)
    remote = new_repo(stack, "takes")
    session = PartPuts(fail_first={2: 1})

    answer = pushed(stack, remote, source, session)

    assert answer["status"] == "ok" and answer["bytes"] > taken
    assert session.puts == {1: 1, 2: 2, 3: 1}
    assert open_uploads(stack) == []
    assert main(["clone", remote.url, str(tmp_path / "copy")]) == 0
    assert muse_files(tmp_path / "copy") == muse_files(source)

    key = ["--identity", str(stack.admin_key_path)]
    capsys.readouterr()
    assert main(["usage", "admin/takes", "--server", stack.api_url, *key]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("admin/takes (repository)\n") and "in 1 pack" in shown
    assert main(["usage", "admin", "--server", stack.api_url, "--json", *key]) == 0
    usage = json.loads(capsys.readouterr().out)
    assert usage["scope"] == "owner" and usage["bytes_stored"] >= answer["bytes"]


def test_a_push_killed_mid_upload_resumes_with_only_the_missing_parts(
    stack: LocalStack, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    big_repo(source)
    remote = new_repo(stack, "resumed")
    blocked = subprocess.Popen(
        [sys.executable, str(BLOCKED_PUSH), str(stack.admin_key_path), str(source), remote.url, "2"]
    )
    try:
        deadline = time.monotonic() + 120
        while [u["parts"] for u in open_uploads(stack)] != [[1, 3]]:
            assert blocked.poll() is None, "the push ended before it was killed"
            assert time.monotonic() < deadline, open_uploads(stack)
            time.sleep(0.2)
    finally:
        blocked.kill()
        blocked.wait()

    session = PartPuts()
    answer = pushed(stack, remote, source, session)

    assert session.puts == {2: 1}
    assert answer["status"] == "ok"
    assert open_uploads(stack) == []
    assert main(["clone", remote.url, str(tmp_path / "copy")]) == 0
    assert muse_files(tmp_path / "copy") == muse_files(source)
