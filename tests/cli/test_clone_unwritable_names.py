"""A repository stored before the portable-name rule existed: `muse-cloud clone` over real HTTP
refuses it with a coded error and leaves the target as it found it (absent, or empty)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from histories import commit

from muse_cloud.domain.pushes import PushRequest
from muse_cloud.storage.layout import UploadKey
from muse_cloud_cli.main import main
from muse_cloud_dev.local_stack import LocalStack
from muse_cloud_dev.server import s3, services, settings, stores
from muse_core import paths
from muse_core.mpack import build_mpack, encode_mpack, mpack_key
from muse_core.refs import write_branch_ref
from muse_core.repo import init_repo


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@contextmanager
def event_path_off() -> Iterator[None]:
    """The bucket's upload notifications off for a while: the stack's unpack workers, which
    apply today's rule, never hear of what is uploaded meanwhile."""
    client, bucket = s3(), settings().bucket_name
    answer = client.get_bucket_notification_configuration(Bucket=bucket)
    saved: dict[str, Any] = {k: v for k, v in answer.items() if k != "ResponseMetadata"}
    client.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    try:
        yield
    finally:
        client.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration=saved,  # type: ignore[arg-type]
        )


def push_before_the_rule(
    stack: LocalStack,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    files: dict[str, bytes],
    branch: str,
) -> str:
    """One commit of ``files`` on ``branch``, ingested as the server took it before the rule:
    only a top-level ``.muse`` (folded, trailing dots and spaces dropped) was refused. The
    stack's functions run in worker processes, so the old rule is applied by the ingestion run
    here, against the stack's own storage."""
    source = tmp_path / "source"
    init_repo(source)
    name = f"r{uuid.uuid4().hex[:12]}"
    admin = ["--identity", str(stack.admin_key_path)]
    assert main(["repo", "create", f"admin/{name}", "--server", stack.api_url, *admin]) == 0
    repo = stores().repos.by_slug("admin", name)
    assert repo is not None
    with monkeypatch.context() as before:
        before.setattr(paths, "_refuse_unwritable_segments", lambda *_: None)
        before.setattr(paths, "_aliases_muse_dir", lambda s: s.rstrip(". ").casefold() == ".muse")
        head = commit(source, files, "one", (), 0)
        write_branch_ref(source, branch, head)
        data = encode_mpack(build_mpack(source, [branch]))
        upload = UploadKey(repo.repo_id, mpack_key(data).removeprefix("sha256:"))
        with event_path_off():
            s3().put_object(Bucket=settings().bucket_name, Key=upload.s3_key, Body=data)
        record = services().ingest.ingest(upload, PushRequest(branch, head))
    assert record.state == "ok", record
    return f"{stack.api_url}/admin/{name}"


@pytest.mark.parametrize(
    "path",
    ["MUSE~1/HEAD", ".mu\u200cse/HEAD", "CON", "songs/" + "x" * 256, "a:b"],
    ids=["8.3-name", "hfs-ignorable", "device", "256-bytes", "colon"],
)
def test_a_stored_unwritable_path_is_refused_and_nothing_is_left(
    stack: LocalStack,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    path: str,
) -> None:
    remote = push_before_the_rule(
        stack, monkeypatch, tmp_path, {path: b"hi", "ok.txt": b"ok"}, "main"
    )
    capsys.readouterr()

    absent, empty = tmp_path / "absent", tmp_path / "empty"
    empty.mkdir()
    for dest in (absent, empty):
        assert main(["clone", remote, str(dest)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: invalid_path: the repository holds a name no checkout can")
        assert f"({path[:60]}" in err
    assert not absent.exists()
    assert list(empty.iterdir()) == []


def test_a_stored_unwritable_branch_name_is_refused_and_nothing_is_left(
    stack: LocalStack,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    remote = push_before_the_rule(stack, monkeypatch, tmp_path, {"ok.txt": b"ok"}, "fix:tempo")
    capsys.readouterr()

    dest = tmp_path / "copy"
    assert main(["clone", remote, str(dest)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: invalid_branch_name: the repository holds a name")
    assert err.endswith("(fix:tempo)")
    assert not dest.exists()
