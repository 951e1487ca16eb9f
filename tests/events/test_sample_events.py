"""Every sample event under events/ (for ``sam local invoke -e``), run against its handler on the
moto stack: the unpack sample ingests a pack, then each API sample reads what it wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from muse_cloud.handlers import api, events, unpack
from muse_cloud.storage.fetch_packs import BuildAsked
from muse_cloud.storage.layout import UploadKey
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.event_source import LocalLambdaContext
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import stores
from muse_core.mpack import LocalHistory, build_pack, encode_mpack, mpack_key
from muse_core.refs import list_branches

EVENTS = Path(__file__).resolve().parents[2] / "events"
# The samples name this repository; each run substitutes the id its fresh stack gave it.
SAMPLE_REPO_ID = "3f1c2b9e-6a47-4d2e-9b8a-5c0e7d1f2a64"
# The samples' history: generate_history is deterministic, and a pack without a repo_id is too.
SAMPLE_WORKLOAD = Workload(commits=3, files=4, changed_per_commit=1, blob_bytes=64)
SAMPLE_MPACK_HEX = "c010a430e24b0a393ec5e904b1e17d8f5a8296d9e440004fbca78d458f77bce9"
# What the fetch sample asks for (the sample history's main, nothing held), by name.
SAMPLE_BUILD_ID = "54402abfb7a888b297f075276abd22d83ff5c3e3cd1b4ecd93ff946733c2e1bd"

# Unsigned requests: reads of a public repository succeed; creating needs an identity (401), and
# writing to a repository the caller can see is forbidden (403).
API_STATUS = {
    "openapi": 200,
    "repos-create": 401,
    "repos-get": 200,
    "repos-by-slug": 200,
    "identities-me": 200,
    "collaborators-list": 403,
    "refs": 200,
    "push-presign": 403,
    "push-unpack": 403,
    "push-status": 200,
    "commits-get": 200,
    "log": 200,
    "snapshots-get": 200,
    "objects-get": 200,
    "fetch": 200,
    # A build never handed to the unpack function (the next test hands it over).
    "fetch-build": 404,
    "events-list": 200,
    "refs-delete": 403,
}


def load(path: Path, repo_id: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(path.read_text().replace(SAMPLE_REPO_ID, repo_id))
    return event


@pytest.fixture
def ingested(stack: Provisioned, tmp_path: Path) -> str:
    """The samples' repository with the samples' pack ingested through the unpack sample."""
    generate_history(tmp_path, SAMPLE_WORKLOAD)
    data = encode_mpack(build_pack(LocalHistory(tmp_path), list_branches(tmp_path)))
    assert mpack_key(data) == f"sha256:{SAMPLE_MPACK_HEX}", "regenerate events/ for this pack"
    repo = stores().repos.create("admin", "songs", "public")
    key = UploadKey(repo.repo_id, SAMPLE_MPACK_HEX)
    boto3.client("s3").put_object(Bucket=stack.names.bucket, Key=key.s3_key, Body=data)

    # What Lambda passes as the context, structurally; the handlers are typed for Powertools'.
    context: Any = LocalLambdaContext("UnpackFunction")
    answer = unpack.lambda_handler(load(EVENTS / "unpack" / "s3-put.json", repo.repo_id), context)

    assert answer == {"batchItemFailures": []}
    record = stores().pushes.get(repo.repo_id, SAMPLE_MPACK_HEX)
    assert record is not None and record.state == "ok"
    return repo.repo_id


def test_every_api_sample_has_an_expected_status() -> None:
    assert {p.stem for p in (EVENTS / "api").glob("*.json")} == set(API_STATUS)


@pytest.mark.parametrize("name", sorted(API_STATUS))
def test_api_sample(ingested: str, name: str) -> None:
    event = load(EVENTS / "api" / f"{name}.json", ingested)
    context: Any = LocalLambdaContext("ApiFunction")
    answer = api.lambda_handler(event, context)
    assert answer["statusCode"] == API_STATUS[name], answer.get("body")


def test_push_events_sample(ingested: str) -> None:
    """The schedule's event: the sweep publishes the sample push's ref change, then nothing."""
    context: Any = LocalLambdaContext("PushEventsFunction")
    sample = json.loads((EVENTS / "push-events" / "schedule.json").read_text())
    assert events.lambda_handler(sample, context) == {"published": 1}
    assert events.lambda_handler(sample, context) == {"published": 0}
    listed = api.lambda_handler(load(EVENTS / "api" / "events-list.json", ingested), context)
    assert [e["ref"] for e in json.loads(listed["body"])["events"]] == ["main"]


def test_fetch_build_samples(ingested: str) -> None:
    """The unpack sample's other kind of event: a fetch pack the API handed over (as it does
    when building it outlasts its call) is built, and the API's build sample answers it."""
    head = stores().refs.heads(ingested)["main"]
    asked = BuildAsked({"main": head}, [], [])
    assert asked.request_id() == SAMPLE_BUILD_ID, "regenerate events/ for this request"
    stores().fetch_packs.ask_build(ingested, SAMPLE_BUILD_ID, asked)
    context: Any = LocalLambdaContext("UnpackFunction")
    sample = load(EVENTS / "unpack" / "s3-fetch-build.json", ingested)
    assert unpack.lambda_handler(sample, context) == {"batchItemFailures": []}

    answer = api.lambda_handler(load(EVENTS / "api" / "fetch-build.json", ingested), context)
    assert answer["statusCode"] == 200, answer.get("body")
    built = json.loads(answer["body"])
    assert (built["status"], built["commits"], built["branch_heads"]) == (
        "ready",
        3,
        {"main": head},
    )
    fetched = api.lambda_handler(load(EVENTS / "api" / "fetch.json", ingested), context)
    assert json.loads(fetched["body"])["mpack_key"] == built["mpack_key"]
