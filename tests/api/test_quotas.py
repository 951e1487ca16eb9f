"""Quotas through the API function on moto's DynamoDB and S3: 429 with Retry-After, 413 at
presign, the usage routes, and the push counter's condition holding when presigns race."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from attack.test_races import meet_after_first, owner_caller, serialised_writes
from histories import linear_history

from muse_cloud.api.statuses import http_status
from muse_cloud.domain.errors import ServiceError
from muse_cloud.storage.quotas import QuotaStore
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import services
from muse_core.mpack import encode_mpack, mpack_key

from .client import call
from .test_endpoints import create_repo, expect_error, identity, push

__all__ = ["serialised_writes"]  # a fixture, used by name


def limit(scope: str, **quota: int) -> None:
    """Set a quota of the services the API function composed (from its settings)."""
    quotas = services().quotas
    name = f"{scope}_quota"
    setattr(quotas, name, replace(getattr(quotas, name), **quota))


def test_a_push_over_the_rate_answers_429_with_retry_after(stack: Provisioned) -> None:
    limit("repository", max_pushes_per_minute=2)
    owner = identity("olivia")
    create_repo(owner, "songs")
    data = encode_mpack(linear_history().pack())
    body = {"mpack_key": mpack_key(data), "size_bytes": len(data)}
    for _ in range(2):
        assert call("POST", "/olivia/songs/push/mpack-presign", body, owner).status == 200

    refused = call("POST", "/olivia/songs/push/mpack-presign", body, owner)

    error = expect_error(refused, 429, "rate_limited")
    assert error["item"] == "olivia/songs"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert f"retry in {refused.headers['Retry-After']} s" in error["message"]
    usage = call("GET", "/olivia/songs/usage", key=owner)
    assert usage.status == 200, usage.body
    assert usage.json() == {
        "scope": "repository",
        "name": "olivia/songs",
        "bytes_stored": 0,
        "max_bytes": 5 * 1024**4,
        "packs_stored": 0,
        "pushes_this_minute": 2,
        "max_pushes_per_minute": 2,
    }
    # No other refusal says when to come back.
    other = call("POST", "/olivia/nope/push/mpack-presign", body, owner)
    assert other.status == 404 and "Retry-After" not in other.headers


def test_a_push_over_the_bytes_quota_is_413_and_usage_follows_the_packs(
    stack: Provisioned,
) -> None:
    first = encode_mpack(linear_history(commits=2, tag="a").pack())
    bigger = encode_mpack(linear_history(commits=3, tag="b").pack())
    limit("owner", max_bytes=len(bigger) + 10)
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    assert push(stack, owner, repo, first).status == 200
    usage = call("GET", "/api/owners/olivia/usage", key=owner).json()
    assert (usage["bytes_stored"], usage["packs_stored"]) == (len(first), 1)

    body = {"mpack_key": mpack_key(bigger), "size_bytes": len(bigger)}
    error = expect_error(
        call("POST", "/olivia/songs/push/mpack-presign", body, owner), 413, "quota_exceeded"
    )
    assert error["item"] == "olivia" and f"{len(first):,} of its" in error["message"]
    expect_error(call("GET", "/api/owners/olivia/usage"), 401, "auth_required")
    expect_error(call("GET", "/api/owners/olivia/usage", key=identity("stan")), 403, "forbidden")

    assert call("DELETE", f"/api/repos/{repo['repoId']}", key=owner).status == 204
    usage = call("GET", "/api/owners/olivia/usage", key=owner).json()
    assert (usage["bytes_stored"], usage["packs_stored"]) == (0, 0)
    # Freed, the owner's bytes take the push that was over the quota.
    create_repo(owner, "again")
    assert call("POST", "/olivia/again/push/mpack-presign", body, owner).status == 200


def test_racing_presigns_take_exactly_the_pushes_the_minute_allows(
    stack: Provisioned, serialised_writes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed, racers = 3, 8
    limit("owner", max_pushes_per_minute=allowed)
    caller = owner_caller("rita")
    packs = []
    for n in range(racers):
        services().repos.create(caller, "rita", f"r{n}", "public", False)
        packs.append(encode_mpack(linear_history(tag=f"t{n}").pack()))

    def presign(n: int) -> str:
        data = packs[n]
        try:
            services().push.presign(
                caller, "rita", f"r{n}", mpack_key(data), len(data), "main", None, False
            )
        except ServiceError as error:
            return f"{http_status(error)} {error.code} {error.item}"
        return "ok"

    # Every racer has read the counters before any counts its push.
    with (
        meet_after_first(monkeypatch, QuotaStore, "holdings", racers),
        ThreadPoolExecutor(max_workers=racers) as pool,
    ):
        outcomes = sorted(pool.map(presign, range(racers)))

    assert outcomes == ["429 rate_limited rita"] * (racers - allowed) + ["ok"] * allowed
    assert services().quotas.owner_usage(caller, "rita").pushes_this_minute == allowed
