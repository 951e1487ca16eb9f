"""The branch routes through the API handler on moto (DynamoDB's own transactions, condition
checks and key-range queries): deleting a branch named in the query, the default branch, the
protected-branch rules, and the repository's push events."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from histories import History, linear_history

from muse_cloud_cli.signer import KeyFile
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import services
from muse_core.mpack import encode_mpack

from .client import Answer, call
from .test_endpoints import create_repo, expect_error, identity, push

NESTED = "chansons/été/v1"


@pytest.fixture
def owner(stack: Provisioned) -> KeyFile:
    return identity("olivia")


@pytest.fixture
def repo(stack: Provisioned, owner: KeyFile) -> dict[str, Any]:
    return create_repo(owner, "songs")


@pytest.fixture
def history(stack: Provisioned, owner: KeyFile, repo: dict[str, Any]) -> History:
    """main and a nested, non-ASCII branch at one head, their events published."""
    history = linear_history(commits=2)
    data = encode_mpack(history.pack({"main": history.head, NESTED: history.head}))
    assert push(stack, owner, repo, data, branch=None).status == 200
    assert services().events.publish_pending() == 2
    return history


def delete_branch(key: KeyFile | None, branch: str, head: str) -> Answer:
    query = {"branch": branch, "expected_head": head}
    return call("DELETE", "/olivia/songs/refs", key=key, query=query)


def heads() -> dict[str, str]:
    found: dict[str, str] = call("GET", "/olivia/songs/refs").json()["branch_heads"]
    return found


def test_a_branch_named_in_the_query_is_deleted_at_its_expected_head(
    owner: KeyFile, history: History
) -> None:
    deleted = delete_branch(owner, NESTED, history.head)

    assert deleted.status == 200, deleted.body
    answer = deleted.json()
    assert (answer["branch"], answer["previous_head"]) == (NESTED, history.head)
    assert heads() == {"main": history.head}
    expect_error(delete_branch(owner, NESTED, history.head), 404, "not_found")
    assert services().events.publish_pending() == 1
    [event] = call("GET", "/olivia/songs/events").json()["events"][-1:]
    assert event["event_id"] == answer["event_id"]
    assert (event["ref"], event["deleted"], event["after"]) == (NESTED, True, None)


def test_deletion_refusals(stack: Provisioned, owner: KeyFile, history: History) -> None:
    stranger = identity("stan")
    expect_error(delete_branch(None, NESTED, history.head), 403, "forbidden")
    expect_error(delete_branch(stranger, NESTED, history.head), 403, "forbidden")
    expect_error(delete_branch(owner, NESTED, "0" * 64), 409, "ref_conflict")
    expect_error(delete_branch(owner, "main", history.head), 409, "default_branch")
    expect_error(delete_branch(owner, "a//b", history.head), 422, "invalid_branch_name")
    missing = call("DELETE", "/olivia/songs/refs", key=owner, query={"branch": NESTED})
    assert expect_error(missing, 422, "invalid_request")["item"] == "query.expected_head"
    # The path form is no route: the branch goes in the query.
    path = f"/olivia/songs/refs/{quote(NESTED, safe='')}"
    expect_error(call("DELETE", path, key=owner), 404, "no_such_route")
    assert heads() == {"main": history.head, NESTED: history.head}


def test_the_default_branch_changes_to_an_existing_branch(
    owner: KeyFile, repo: dict[str, Any], history: History
) -> None:
    path = f"/api/repos/{repo['repoId']}"
    changed = call("PATCH", path, {"defaultBranch": NESTED}, owner)
    assert changed.status == 200, changed.body
    assert changed.json()["defaultBranch"] == NESTED
    assert call("GET", "/olivia/songs/refs").json()["default_branch"] == NESTED
    expect_error(call("PATCH", path, {"default_branch": "nope"}, owner), 404, "not_found")
    expect_error(call("PATCH", path, {"default_branch": "a//b"}, owner), 422, "invalid_branch_name")
    expect_error(call("PATCH", path, {}, owner), 422, "invalid_request")
    expect_error(
        call("PATCH", path, {"default_branch": "main"}, identity("stan")), 403, "forbidden"
    )

    assert delete_branch(owner, "main", history.head).status == 200
    expect_error(delete_branch(owner, NESTED, history.head), 409, "default_branch")


def test_rules_are_read_and_replaced_with_a_version(
    stack: Provisioned, owner: KeyFile, repo: dict[str, Any], history: History
) -> None:
    path = f"/api/repos/{repo['repoId']}/protection"
    unset = call("GET", path, key=owner)
    assert unset.status == 200 and unset.json() == {
        "version": 0,
        "rules": [
            {"pattern": ":default", "force_push": False, "deletion": False, "push": "writers"}
        ],
    }
    expect_error(call("GET", path), 403, "forbidden")
    expect_error(call("GET", path, key=identity("stan")), 403, "forbidden")

    rules = {"rules": [{"pattern": "chansons/*", "push": "admins"}], "version": 0}
    replaced = call("PUT", path, rules, owner)
    assert replaced.status == 200, replaced.body
    assert replaced.json()["version"] == 1
    assert call("GET", path, key=owner).json() == replaced.json()
    expect_error(call("PUT", path, rules, owner), 409, "protection_conflict")
    bad = {"rules": [{"pattern": "x", "push": "everyone"}]}
    expect_error(call("PUT", path, bad, owner), 422, "invalid_request")
    expect_error(call("PUT", path, {"rules": [{"pattern": ""}]}, owner), 422, "invalid_protection")

    writer = identity("wes")
    role = {"role": "write"}
    assert call("PUT", f"/api/repos/{repo['repoId']}/collaborators/wes", role, owner).status == 200
    refused = delete_branch(writer, NESTED, history.head)
    body = expect_error(refused, 403, "branch_protected")
    assert "'chansons/*'" in body["message"] and body["item"] == NESTED
    # main is no longer covered by any rule: a writer may force it back.
    other = History("other")
    other.add({"x.mid": b"x"})
    forced = push(stack, writer, repo, encode_mpack(other.pack()), "main", force=True)
    assert forced.status == 200, forced.body


def test_events_since_a_time(owner: KeyFile, history: History) -> None:
    everything = call("GET", "/olivia/songs/events").json()
    # One push's changes are published together, in the order of their branches.
    assert [e["ref"] for e in everything["events"]] == [NESTED, "main"]
    assert everything["truncated"] is False
    first, second = everything["events"]
    assert first["published_at"] == second["published_at"]
    assert first["push_id"] == second["push_id"] and first["counts"]["commits"] == 2
    assert delete_branch(owner, NESTED, history.head).status == 200
    assert services().events.publish_pending() == 1
    later = call("GET", "/olivia/songs/events", query={"since": second["published_at"]})
    [deleted] = later.json()["events"]
    assert (deleted["ref"], deleted["deleted"], deleted["pusher"]) == (NESTED, True, "olivia")
    newest = call("GET", "/olivia/songs/events", query={"limit": "1"}).json()
    assert newest == {"events": [deleted], "truncated": True}
    expect_error(
        call("GET", "/olivia/songs/events", query={"since": "yesterday"}), 422, "invalid_since"
    )
    expect_error(call("GET", "/olivia/songs/events", query={"limit": "0"}), 422, "invalid_limit")
    expect_error(call("GET", "/olivia/nothing/events"), 404, "not_found")
