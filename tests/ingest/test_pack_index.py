"""Pack indexes: a clone locates its objects through one index per pushed pack instead of one
index item per object, and finds the same bytes either way."""

from __future__ import annotations

from pathlib import Path

import pytest

from muse_cloud.auth.identities import Caller
from muse_cloud.services.fetch import FetchService
from muse_cloud.services.ingest import IngestService
from muse_cloud.storage.objects import ObjectIndex, ObjectLocation
from muse_cloud.storage.pack_index import (
    OBJECTS_PER_PACK_INDEX,
    PackIndex,
    decode_index,
    encode_index,
)
from muse_cloud.storage.packs import PackStore
from muse_cloud.storage.repos import RepoStore
from muse_cloud_cli.provision import Provisioned
from muse_cloud_cli.workload import Workload, generate_history
from muse_core.mpack import build_mpack, decode_mpack, encode_mpack
from muse_core.refs import list_branches

from .test_event_path import upload

OWNER = Caller(handle="alice", identity_id=None)


def test_index_round_trip() -> None:
    locations = [ObjectLocation(f"{n:064x}", "incoming/r/p.mpack", n * 7, n) for n in range(5)]
    data = encode_index(locations)
    wanted = {locations[1].object_id, locations[3].object_id, "f" * 64}
    assert decode_index(data, "incoming/r/p.mpack", wanted) == {
        loc.object_id: loc for loc in (locations[1], locations[3])
    }


def test_a_clone_reads_pack_indexes_and_gets_the_same_bytes(
    stack: Provisioned, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = RepoStore().create("alice", "big", "public")
    files = 2 * OBJECTS_PER_PACK_INDEX + 50  # enough objects per pack to read the indexes
    generate_history(tmp_path, Workload(commits=3, files=files, changed_per_commit=2))
    first_head = list_branches(tmp_path)["main"]
    data = encode_mpack(build_mpack(tmp_path))
    assert IngestService().ingest(upload(stack, repo.repo_id, data)).state == "ok"
    generate_history(tmp_path, Workload(commits=2, files=files, changed_per_commit=2), start=3)
    second = encode_mpack(build_mpack(tmp_path, have=[first_head]))
    assert IngestService().ingest(upload(stack, repo.repo_id, second)).state == "ok"

    per_object_reads: list[int] = []
    real_locate_many = ObjectIndex.locate_many

    def counting(self: ObjectIndex, repo_id: str, object_ids: set[str]) -> dict[str, object]:
        per_object_reads.append(len(object_ids))
        return real_locate_many(self, repo_id, object_ids)  # type: ignore[return-value]

    monkeypatch.setattr(ObjectIndex, "locate_many", counting)
    answer = FetchService().fetch(OWNER, "alice", "big", [], [])

    assert per_object_reads == [], "a clone of two packs goes through their indexes"
    assert answer["objects"] == files + 4 * 2
    pack = decode_mpack(PackStore().get(f"fetch/{repo.repo_id}/{answer['mpack_key'][7:]}.mpack"))
    source = {o["object_id"]: o["content"] for o in decode_mpack(data)["objects"]}
    source.update({o["object_id"]: o["content"] for o in decode_mpack(second)["objects"]})
    assert {o["object_id"]: o["content"] for o in pack["objects"]} == source

    few = PackIndex().locate_all(repo.repo_id, list(source)[:3])
    assert per_object_reads == [3], "a handful of objects is looked up one index item each"
    assert {loc.object_id for loc in few.values()} == set(list(source)[:3])
