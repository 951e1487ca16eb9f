"""The log of a wide history (a frontier of a hundred commits) pages through every commit once."""

from __future__ import annotations

from pathlib import Path

import pytest
from core.conftest import commit_tree
from ingest.test_event_path import upload

from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import Caller
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import services, stores
from muse_core.mpack import build_mpack, encode_mpack
from muse_core.refs import write_branch_ref
from muse_core.repo import init_repo

READER = Caller(handle=None, identity_id=None)


def test_a_wide_history_pages_through_every_commit_once(stack: Provisioned, tmp_path: Path) -> None:
    repo = stores().repos.create("alice", "wide", "public")
    init_repo(tmp_path)
    at = "2026-03-16T12:{:02d}:{:02d}+00:00"
    root = commit_tree(tmp_path, {"r": b"r"}, message="root", committed_at=at.format(0, 0))
    width = 100
    tips = []
    for n in range(width):
        tip = commit_tree(
            tmp_path, {"r": b"r", f"t{n}": b"t"}, message=f"tip {n}",
            committed_at=at.format(1 + n // 60, n % 60), parents=(root.commit_id,),
        )  # fmt: skip
        tips.append(tip)
    files = {"r": b"r", "t0": b"t"}
    merged = tips[0]
    for n, tip in enumerate(tips[1:], start=1):
        files[f"t{n}"] = b"t"
        merged = commit_tree(
            tmp_path, dict(files), message=f"merge {n}",
            committed_at=at.format(30 + n // 60, n % 60),
            parents=(merged.commit_id, tip.commit_id),
        )  # fmt: skip
    write_branch_ref(tmp_path, "main", merged.commit_id)
    key = upload(stack, repo.repo_id, encode_mpack(build_mpack(tmp_path)))
    assert services().ingest.ingest(key).state == "ok"

    first = services().history.log(READER, "alice", "wide", None, 10, None).body["next_cursor"]
    stores().repos.create("alice", "other", "public")
    with pytest.raises(ServiceError) as elsewhere:
        services().history.log(READER, "alice", "other", None, 10, first)
    assert elsewhere.value.code == "invalid_cursor"

    seen: list[str] = []
    cursor = None
    while True:
        page = services().history.log(READER, "alice", "wide", None, 30, cursor).body
        assert len(page["commits"]) == 30 or page["next_cursor"] is None
        seen.extend(c["commit_id"] for c in page["commits"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(cursor) == 32

    assert len(seen) == len(set(seen)) == 1 + width + (width - 1)
    assert seen[0] == merged.commit_id and seen[-1] == root.commit_id
