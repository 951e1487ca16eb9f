"""Answers that would outgrow a Lambda response (6 MB): the log pages by bytes as well as by
count, and a commit, a log page or a snapshot over the budget answers 302 to a short-lived URL
of the same JSON document. Through API Gateway v2 events on the in-process moto stack."""

from __future__ import annotations

import base64
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import msgpack
import pytest
import requests
from histories import History

from muse_cloud.services.history import RESPONSE_BUDGET_BYTES, wire_bytes
from muse_cloud_dev.provision import Provisioned
from muse_core.commits import CommitRecord
from muse_core.ids import blob_id
from muse_core.limits import MIB
from muse_core.mpack import encode_mpack
from muse_core.snapshot import compute_snapshot_id

from .client import Answer, call
from .test_endpoints import create_repo, identity, push

LAMBDA_RESPONSE_LIMIT = 6 * MIB
MSGPACK = {"accept": "application/x-msgpack"}
_EPOCH = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)


def add_commit(history: History, message: str, **fields: Any) -> str:
    """A commit on the latest one, with this message, over a one-file tree."""
    parent = history.order[-1] if history.order else None
    oid = blob_id(b"x")
    history.blobs[oid] = b"x"
    manifest = {"a.txt": oid}
    snapshot_id = compute_snapshot_id(manifest)
    history.snapshots[snapshot_id] = manifest
    record = CommitRecord.create(
        snapshot_id=snapshot_id,
        message=message,
        committed_at=(_EPOCH + timedelta(seconds=len(history.order))).isoformat(),
        parent_ids=(parent,) if parent else (),
        **fields,
    )
    history.records[record.commit_id] = record
    history.order.append(record.commit_id)
    return record.commit_id


def lambda_payload_bytes(answer: Answer, headers: dict[str, str]) -> int:
    """The size of the answer's body as the Lambda response document carries it."""
    if headers is MSGPACK:
        assert answer.headers["Content-Type"] == "application/x-msgpack"
        return len(json.dumps(base64.b64encode(answer.body).decode()))
    return len(json.dumps(answer.body.decode()))


def followed(answer: Answer) -> Any:
    """The document behind a redirect, fetched from the URL without any signature."""
    assert answer.status == 302, (answer.status, answer.body[:200])
    assert answer.body == b""
    got = requests.get(answer.headers["Location"], timeout=30)
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "application/json"
    return got.json()


@pytest.mark.parametrize("headers", [{}, MSGPACK], ids=["json", "msgpack"])
def test_a_log_of_huge_messages_pages_under_the_budget(
    stack: Provisioned, headers: dict[str, str]
) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    history = History()
    for n in range(8):
        add_commit(history, f"take {n}\n" + "la " * ((MIB - 64) // 3))
    assert push(stack, owner, repo, encode_mpack(history.pack())).status == 200

    pages: list[list[dict[str, Any]]] = []
    query = {"limit": "50"}
    while True:
        answer = call("GET", "/olivia/songs/log", query=query, headers=headers)
        assert answer.status == 200, answer.body[:200]
        assert lambda_payload_bytes(answer, headers) < RESPONSE_BUDGET_BYTES
        page = msgpack.unpackb(answer.body) if headers else answer.json()
        pages.append(page["commits"])
        if page["next_cursor"] is None:
            break
        query = {"limit": "50", "cursor": page["next_cursor"]}

    # A 1 MiB message is 1.4 MB once msgpack goes out in base64, which either form of the
    # answer is budgeted for: two fit in 4 MB, a third would not.
    assert [len(p) for p in pages] == [2, 2, 2, 2]
    for page, after in itertools.pairwise(pages):
        assert wire_bytes({"commits": page + after[:1], "next_cursor": "0" * 32}) > (
            RESPONSE_BUDGET_BYTES - 1024
        )
    listed = [commit for page in pages for commit in page]
    newest_first = list(reversed(history.order))
    assert [c["commit_id"] for c in listed] == newest_first
    assert listed == [history.records[c].to_dict() for c in newest_first]


def test_a_commit_over_the_budget_is_served_by_url(stack: Provisioned) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    history = History()
    small = add_commit(history, "small")
    # Every '"' is 4 bytes of response: escaped in the JSON text, and again in the body string.
    quoted = add_commit(history, '"' * (MIB - 16))
    assert push(stack, owner, repo, encode_mpack(history.pack())).status == 200
    record = history.records[quoted].to_dict()
    assert wire_bytes(record) > RESPONSE_BUDGET_BYTES

    assert followed(call("GET", f"/olivia/songs/commits/{quoted}")) == record
    assert followed(call("GET", f"/olivia/songs/commits/{quoted}", headers=MSGPACK)) == record
    inline = call("GET", f"/olivia/songs/commits/{small}")
    assert inline.status == 200 and inline.json() == history.records[small].to_dict()

    # Alone on its log page, which goes by URL; the cursor then carries on inline.
    page = followed(call("GET", "/olivia/songs/log"))
    assert page["commits"] == [record] and page["next_cursor"]
    rest = call("GET", "/olivia/songs/log", query={"cursor": page["next_cursor"]})
    assert rest.status == 200
    assert rest.json() == {"commits": [history.records[small].to_dict()], "next_cursor": None}

    # One document per distinct answer (both asks for the record share one), kept where the
    # repository's deletion reaches it.
    def kept() -> list[str]:
        prefix = f"fetch/{repo['repoId']}/answers/"
        listed = boto3.client("s3").list_objects_v2(Bucket=stack.names.bucket, Prefix=prefix)
        return [o["Key"] for o in listed.get("Contents", [])]

    assert len(kept()) == 2
    assert call("DELETE", f"/api/repos/{repo['repoId']}", key=owner).status == 204
    assert kept() == []


def pushed_tree(stack: Provisioned, files: dict[str, bytes]) -> tuple[str, dict[str, str]]:
    """olivia/songs with one commit of ``files``: its snapshot id and manifest."""
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    history = History()
    snapshot_id = history.records[history.add(files)].snapshot_id
    assert push(stack, owner, repo, encode_mpack(history.pack())).status == 200
    return snapshot_id, history.snapshots[snapshot_id]


def test_a_snapshot_of_80000_entries_is_served_by_url_and_verifies(stack: Provisioned) -> None:
    files = {f"tracks/album-{n % 40:02d}/song-{n:05d}.mid": b"same" for n in range(80_000)}
    snapshot_id, manifest = pushed_tree(stack, files)
    document = {"snapshot_id": snapshot_id, "manifest": manifest}
    assert wire_bytes(document) > RESPONSE_BUDGET_BYTES

    for headers in ({}, MSGPACK):
        served = followed(call("GET", f"/olivia/songs/snapshots/{snapshot_id}", headers=headers))
        assert served["snapshot_id"] == snapshot_id
        assert len(served["manifest"]) == 80_000
        assert compute_snapshot_id(served["manifest"]) == snapshot_id
        assert served == document


def test_small_answers_stay_inline(stack: Provisioned) -> None:
    snapshot_id, manifest = pushed_tree(
        stack, {f"tracks/s-{n:05d}.mid": b"s" for n in range(30_000)}
    )

    answer = call("GET", f"/olivia/songs/snapshots/{snapshot_id}")
    assert answer.status == 200
    assert answer.json() == {"snapshot_id": snapshot_id, "manifest": manifest}
    assert lambda_payload_bytes(answer, {}) < RESPONSE_BUDGET_BYTES < LAMBDA_RESPONSE_LIMIT
