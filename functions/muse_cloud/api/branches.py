"""Branch management: deleting a branch, choosing the default one, protected-branch rules, and a
repository's push events.

A branch to delete is named in the query (``?branch=feature/x``), not the path: API Gateway's
HTTP APIs hand the function a percent-decoded ``rawPath``, so ``refs/feature%2Fx`` would arrive
as two segments, and an MSign signature over the encoded path would no longer match it; the
query string arrives as it was sent.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from muse_cloud.api.answers import (
    DeletedRefAnswer,
    EventsAnswer,
    ProtectionAnswer,
    RepoAnswer,
)
from muse_cloud.api.edge import ANYONE, SIGNED, caller, services
from muse_cloud.api.models import ProtectionBody, UpdateRepo
from muse_cloud.api.routes import documented
from muse_cloud.domain.protection import BranchRule

router = Router()  # type: ignore[no-untyped-call]


@router.delete("/<owner>/<repo>/refs", responses=documented(), security=SIGNED)
def delete_ref(
    owner: str,
    repo: str,
    branch: Annotated[str, Query(description="the branch, as it is named")],
    expected_head: Annotated[str, Query(description="deleted only while it points here")],
) -> DeletedRefAnswer:
    event = services(router).branches.delete(caller(router), owner, repo, branch, expected_head)
    return DeletedRefAnswer.of(event)


@router.patch("/api/repos/<repo_id>", responses=documented(), security=SIGNED)
def update_repo(repo_id: str, body: UpdateRepo) -> RepoAnswer:
    repo = services(router).branches.set_default(caller(router), repo_id, body.default_branch)
    return RepoAnswer.of(repo)


@router.get("/api/repos/<repo_id>/protection", responses=documented(), security=SIGNED)
def get_protection(repo_id: str) -> ProtectionAnswer:
    return ProtectionAnswer.of(services(router).branches.protection(caller(router), repo_id))


@router.put("/api/repos/<repo_id>/protection", responses=documented(), security=SIGNED)
def set_protection(repo_id: str, body: ProtectionBody) -> ProtectionAnswer:
    rules = [BranchRule(r.pattern, r.force_push, r.deletion, r.push) for r in body.rules]
    protection = services(router).branches.protect(caller(router), repo_id, rules, body.version)
    return ProtectionAnswer.of(protection)


@router.get("/<owner>/<repo>/events", responses=documented(), security=ANYONE)
def events(
    owner: str,
    repo: str,
    since: Annotated[str | None, Query(description="ISO 8601; default: a day ago")] = None,
    limit: Annotated[int, Query()] = 100,
) -> EventsAnswer:
    recent = services(router).events.recent(caller(router), owner, repo, since, limit)
    return EventsAnswer.of(recent)
