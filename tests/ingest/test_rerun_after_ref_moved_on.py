"""A rerun whose crashed first run already moved the ref, after another push moved it further,
still converges on the first run's outcome instead of calling itself a non-fast-forward."""

from __future__ import annotations

from pathlib import Path

import pytest

from muse_cloud.storage.pushes import PushStore
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import answered, services, stores
from muse_core.mpack import build_mpack, encode_mpack
from muse_core.refs import list_branches

from .test_event_path import upload

SMALL = Workload(commits=2, files=4, changed_per_commit=1)


def test_rerun_after_the_ref_moved_on(
    stack: Provisioned, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = stores().repos.create("alice", "songs", "public")
    service = services().ingest
    generate_history(tmp_path, SMALL)
    first_head = list_branches(tmp_path)["main"]
    assert (
        service.ingest(upload(stack, repo.repo_id, encode_mpack(build_mpack(tmp_path)))).state
        == "ok"
    )

    generate_history(tmp_path, SMALL, start=2)
    second_head = list_branches(tmp_path)["main"]
    second = upload(stack, repo.repo_id, encode_mpack(build_mpack(tmp_path, have=[first_head])))
    real_finish = PushStore.finish

    def crash_after_the_ref_moved(self: PushStore, *args: object, **kwargs: object) -> None:
        raise RuntimeError("crash between the ref move and recording the outcome")

    monkeypatch.setattr(PushStore, "finish", crash_after_the_ref_moved)
    with pytest.raises(RuntimeError):
        service.ingest(second)
    monkeypatch.setattr(PushStore, "finish", real_finish)
    assert stores().refs.get(repo.repo_id, "main") == second_head

    generate_history(tmp_path, SMALL, start=4)
    third = upload(stack, repo.repo_id, encode_mpack(build_mpack(tmp_path, have=[second_head])))
    assert service.ingest(third).state == "ok"

    rerun = service.ingest(second)

    assert rerun.state == "ok", rerun.error
    assert answered(rerun)["previous_head"] == first_head
    assert answered(rerun)["head"] == second_head
    assert stores().refs.get(repo.repo_id, "main") == list_branches(tmp_path)["main"]
    assert stores().pushes.get(repo.repo_id, second.mpack_hex) == rerun
