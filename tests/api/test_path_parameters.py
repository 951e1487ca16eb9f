"""Path parameters go into DynamoDB keys: one that no repository, commit or collaborator could
have is refused with a 4xx before any lookup, never a 500 from a key DynamoDB cannot hold
(a partition key is at most 2,048 bytes)."""

from __future__ import annotations

import pytest

from muse_cloud_dev.provision import Provisioned

from .client import call
from .test_endpoints import create_repo, expect_error, identity

LONG = "a" * 3000
UUID = "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    "path",
    [
        f"/{LONG}/songs/refs",
        f"/olivia/{LONG}/refs",
        f"/{LONG}/{LONG}/log",
        "/Olivia/songs/refs",
        "/olivia/a..b/refs",
        f"/api/repos/by-slug/{LONG}/songs",
        f"/api/repos/by-slug/olivia/{LONG}",
        f"/api/repos/{LONG}",
        f"/api/repos/{UUID.upper()}",
        f"/api/repos/{UUID}x",
        "/api/repos/not-a-uuid",
    ],
)
def test_a_repository_that_cannot_exist_is_not_found(stack: Provisioned, path: str) -> None:
    expect_error(call("GET", path), 404, "not_found")


def test_repo_id_routes_refuse_ids_that_cannot_exist(stack: Provisioned) -> None:
    owner = identity("olivia")
    base = f"/api/repos/{LONG}"
    expect_error(call("DELETE", base, key=owner), 404, "not_found")
    expect_error(call("GET", f"{base}/collaborators", key=owner), 404, "not_found")
    expect_error(
        call("PUT", f"{base}/collaborators/rita", {"role": "read"}, owner), 404, "not_found"
    )
    expect_error(call("DELETE", f"{base}/collaborators/rita", key=owner), 404, "not_found")


def test_a_collaborator_handle_that_cannot_exist(stack: Provisioned) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    path = f"/api/repos/{repo['repoId']}/collaborators/{LONG}"
    expect_error(call("DELETE", path, key=owner), 400, "invalid_handle")
    expect_error(call("PUT", path, {"role": "read"}, owner), 400, "invalid_handle")


@pytest.mark.parametrize("route", ["commits", "snapshots", "objects"])
def test_ids_that_cannot_exist(stack: Provisioned, route: str) -> None:
    create_repo(identity("olivia"), "songs")
    expect_error(call("GET", f"/olivia/songs/{route}/{LONG}"), 422, "invalid_id")


def test_fetch_and_log_parameters_that_cannot_exist(stack: Provisioned) -> None:
    create_repo(identity("olivia"), "songs")
    expect_error(call("POST", "/olivia/songs/fetch/mpack", {"want": [LONG]}), 422, "invalid_id")
    expect_error(call("POST", "/olivia/songs/fetch/mpack", {"have": [LONG]}), 422, "invalid_id")
    expect_error(
        call("GET", "/olivia/songs/log", query={"branch": LONG}), 422, "invalid_branch_name"
    )
