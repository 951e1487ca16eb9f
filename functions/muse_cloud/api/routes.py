"""The routes of protocol section 4 and the administration of repositories and identities: each
adapts a request to one service call and the service's record to a typed answer."""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from muse_cloud.api.answers import (
    CallerAnswer,
    CollaboratorAnswer,
    CollaboratorsAnswer,
    ErrorAnswer,
    IdentityAnswer,
    PartsAnswer,
    PresignAnswer,
    PushAnswer,
    RefsAnswer,
    RepoAnswer,
    UsageAnswer,
)
from muse_cloud.api.edge import ANYONE, SIGNED, binary_answer, caller, services, signed_only
from muse_cloud.api.models import (
    CreateRepo,
    FetchRequest,
    PresignPush,
    RegisterIdentity,
    SetCollaborator,
    UnpackPush,
    UploadPartsRequest,
)
from muse_cloud.api.statuses import STATUS_BY_CODE
from muse_cloud.services.fetch import FetchPack
from muse_cloud.services.history import DocumentAnswer

router = Router()  # type: ignore[no-untyped-call]

_ERROR_STATUSES = sorted(set(STATUS_BY_CODE.values()))


def documented(status: int = 200, more: dict[int, str] | None = None) -> dict[int, Any]:
    """The answers a route documents: its own (its return type), more by status, and every
    refusal as ``ErrorAnswer`` (the 422 included, where Powertools would name its own)."""
    errors = {
        code: {
            "description": "refused: {code, message, item}",
            "content": {"application/json": {"model": ErrorAnswer}},
        }
        for code in _ERROR_STATUSES
    }
    extra = {code: {"description": text} for code, text in (more or {}).items()}
    return {**errors, **extra, status: {"description": "OK"}}


_LARGE = {302: "too large for a Lambda answer: Location is a short-lived URL of it"}


def _document(answer: DocumentAnswer) -> Response[Any]:
    """Inline, or a redirect to the same document when it would outgrow a Lambda response."""
    if answer.url is not None:
        return Response(302, "text/plain", "", headers={"Location": answer.url})
    return Response(200, "application/json", json.dumps(answer.body))


@router.post("/api/repos", status_code=201, responses=documented(201), security=SIGNED)
@signed_only
def create_repo(body: CreateRepo) -> RepoAnswer:
    repo = services(router).repos.create(
        caller(router), body.owner, body.name, body.visibility, body.initialize, body.domain
    )
    return RepoAnswer.of(repo)


@router.get("/api/repos/by-slug/<owner>/<name>", responses=documented(), security=ANYONE)
def repo_by_slug(owner: str, name: str) -> RepoAnswer:
    return RepoAnswer.of(services(router).repos.by_slug(caller(router), owner, name))


@router.get("/api/repos/<repo_id>", responses=documented(), security=ANYONE)
def get_repo(repo_id: str) -> RepoAnswer:
    return RepoAnswer.of(services(router).repos.get(caller(router), repo_id))


@router.delete("/api/repos/<repo_id>", status_code=204, responses=documented(204), security=SIGNED)
def delete_repo(repo_id: str) -> None:
    services(router).repos.delete(caller(router), repo_id)


@router.get("/api/repos/<repo_id>/collaborators", responses=documented(), security=SIGNED)
def list_collaborators(repo_id: str) -> CollaboratorsAnswer:
    listed = services(router).repos.list_collaborators(caller(router), repo_id)
    return CollaboratorsAnswer(collaborators=listed)


@router.put("/api/repos/<repo_id>/collaborators/<handle>", responses=documented(), security=SIGNED)
def set_collaborator(repo_id: str, handle: str, body: SetCollaborator) -> CollaboratorAnswer:
    services(router).repos.set_collaborator(caller(router), repo_id, handle, body.role)
    return CollaboratorAnswer(handle=handle, role=body.role)


@router.delete(
    "/api/repos/<repo_id>/collaborators/<handle>",
    status_code=204,
    responses=documented(204),
    security=SIGNED,
)
def remove_collaborator(repo_id: str, handle: str) -> None:
    services(router).repos.remove_collaborator(caller(router), repo_id, handle)


@router.post("/api/identities", status_code=201, responses=documented(201), security=SIGNED)
@signed_only
def register_identity(body: RegisterIdentity) -> IdentityAnswer:
    identity = services(router).identities.register(
        caller(router), body.handle, body.public_key, body.is_admin, body.is_agent
    )
    return IdentityAnswer.model_validate(identity)


@router.get("/api/identities/me", responses=documented(), security=ANYONE)
def who_am_i() -> CallerAnswer:
    return CallerAnswer.of(caller(router))


@router.get("/<owner>/<repo>/refs", responses=documented(), security=ANYONE)
def refs(owner: str, repo: str) -> RefsAnswer:
    found = services(router)
    return RefsAnswer.of(
        found.history.branch_heads(caller(router), owner, repo), found.settings.pack_limits
    )


@router.post("/<owner>/<repo>/push/mpack-presign", responses=documented(), security=ANYONE)
def presign_push(owner: str, repo: str, body: PresignPush) -> PresignAnswer:
    presigned = services(router).push.presign(
        caller(router),
        owner,
        repo,
        body.mpack_key,
        body.size_bytes,
        body.branch,
        body.head,
        body.force,
        body.multipart,
    )
    return PresignAnswer.of(presigned)


@router.post("/<owner>/<repo>/push/mpack-parts", responses=documented(), security=ANYONE)
def upload_parts(owner: str, repo: str, body: UploadPartsRequest) -> PartsAnswer:
    parts = services(router).push.upload_parts(
        caller(router), owner, repo, body.mpack_key, body.upload_id
    )
    return PartsAnswer.of(parts)


@router.post("/<owner>/<repo>/push/mpack-complete", responses=documented(), security=ANYONE)
def complete_upload(owner: str, repo: str, body: UploadPartsRequest) -> PushAnswer:
    record = services(router).push.complete_upload(
        caller(router), owner, repo, body.mpack_key, body.upload_id
    )
    return PushAnswer.of(record)


@router.get("/<owner>/<repo>/usage", responses=documented(), security=SIGNED)
@signed_only
def repo_usage(owner: str, repo: str) -> UsageAnswer:
    usage = services(router).quotas.repository_usage(caller(router), owner, repo)
    return UsageAnswer.of(usage)


@router.get("/api/owners/<owner>/usage", responses=documented(), security=SIGNED)
@signed_only
def owner_usage(owner: str) -> UsageAnswer:
    return UsageAnswer.of(services(router).quotas.owner_usage(caller(router), owner))


@router.post("/<owner>/<repo>/push/unpack-mpack", responses=documented(), security=ANYONE)
def unpack_push(owner: str, repo: str, body: UnpackPush) -> PushAnswer:
    record = services(router).push.unpack(
        caller(router), owner, repo, body.mpack_key, body.branch, body.head, body.force
    )
    return PushAnswer.of(record)


@router.get("/<owner>/<repo>/push/<push_id>", responses=documented(), security=ANYONE)
def push_status(owner: str, repo: str, push_id: str) -> PushAnswer:
    return PushAnswer.of(services(router).push.status(caller(router), owner, repo, push_id))


@router.get(
    "/<owner>/<repo>/commits/<commit_id>", responses=documented(more=_LARGE), security=ANYONE
)
def get_commit(owner: str, repo: str, commit_id: str) -> Response[Any]:
    return _document(services(router).history.commit(caller(router), owner, repo, commit_id))


@router.get("/<owner>/<repo>/log", responses=documented(more=_LARGE), security=ANYONE)
def log(
    owner: str,
    repo: str,
    branch: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query()] = 50,
    cursor: Annotated[str | None, Query()] = None,
) -> Response[Any]:
    return _document(
        services(router).history.log(caller(router), owner, repo, branch, limit, cursor)
    )


@router.get(
    "/<owner>/<repo>/snapshots/<snapshot_id>", responses=documented(more=_LARGE), security=ANYONE
)
def get_snapshot(owner: str, repo: str, snapshot_id: str) -> Response[Any]:
    return _document(services(router).history.snapshot(caller(router), owner, repo, snapshot_id))


@router.get(
    "/<owner>/<repo>/objects/<object_id>",
    responses=documented(more={302: "a large object: Location is a short-lived URL of it"}),
    security=ANYONE,
)
@binary_answer
def get_object(owner: str, repo: str, object_id: str) -> Response[Any]:
    answer = services(router).history.object(caller(router), owner, repo, object_id)
    if answer.url is not None:
        return Response(302, "text/plain", "", headers={"Location": answer.url})
    return Response(200, "application/octet-stream", answer.data or b"")


@router.post("/<owner>/<repo>/fetch/mpack", responses=documented(), security=ANYONE)
def fetch_mpack(owner: str, repo: str, body: FetchRequest) -> FetchPack:
    return services(router).fetch.fetch(caller(router), owner, repo, body.want, body.have)


@router.get("/<owner>/<repo>/fetch/builds/<build_id>", responses=documented(), security=ANYONE)
def fetch_build(owner: str, repo: str, build_id: str) -> FetchPack:
    return services(router).fetch.build(caller(router), owner, repo, build_id)
