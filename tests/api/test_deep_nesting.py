"""Deeply nested pack fields over the API and the event path on moto: a coded 422 recorded on
the push, never a 500 and never a message left in flight."""

from __future__ import annotations

import pytest
from core.test_deep_nesting import DEPTHS, FIELDS, nested_pack
from histories import linear_history
from ingest.test_event_path import event_source, history_items, queue_depth

from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import stores
from muse_core.mpack import mpack_key

from .client import call
from .test_endpoints import create_repo, expect_error, identity, upload


@pytest.mark.parametrize("depth", DEPTHS)
def test_unpack_mpack_refuses_every_nested_field_with_a_code(
    stack: Provisioned, depth: int
) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    pack = linear_history(2).pack()
    for field, (_, field_code) in sorted(FIELDS.items()):
        data = nested_pack(pack, field, depth)
        key = mpack_key(data)
        presign = call(
            "POST",
            "/olivia/songs/push/mpack-presign",
            {"mpack_key": key, "size_bytes": len(data)},
            owner,
        )
        assert presign.status == 200, (field, presign.body)
        upload(stack, repo["repoId"], data)
        answer = call("POST", "/olivia/songs/push/unpack-mpack", {"mpack_key": key}, owner)
        code = field_code if depth < 1024 else "malformed_mpack"
        refusal = expect_error(answer, 422, code)
        assert refusal["item"], field
        record = stores().pushes.get(repo["repoId"], key.removeprefix("sha256:"))
        assert record is not None and record.state == "failed", field
    assert history_items(repo["repoId"]) == {}


def test_the_event_path_records_the_refusal_and_lets_the_message_go(
    stack: Provisioned,
) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    data = nested_pack(linear_history(2).pack(), "head", 1_000)
    upload(stack, repo["repoId"], data)
    # The s3:TestEvent, then the pack's notification: both consumed, neither failed.
    assert event_source(stack).drain() == (2, 0)
    assert queue_depth(stack.queue_url) == 0
    record = stores().pushes.get(repo["repoId"], mpack_key(data).removeprefix("sha256:"))
    assert record is not None and record.state == "failed"
    assert history_items(repo["repoId"]) == {}
