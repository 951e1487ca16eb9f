"""The API function: API Gateway HTTP API v2 events routed to the services."""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from muse_cloud.api import http, wire_v0
from muse_cloud.api import tokens as token_routes
from muse_cloud.api.models import (
    CreateRepo,
    FetchRequest,
    PresignPush,
    RegisterIdentity,
    SetCollaborator,
    UnpackPush,
)
from muse_cloud.auth.identities import Caller, IdentityStore
from muse_cloud.errors import ServiceError
from muse_cloud.services.fetch import FetchService
from muse_cloud.services.history import DocumentAnswer, HistoryService
from muse_cloud.services.push import PushService
from muse_cloud.services.repos import IdentityService, RepoService

logger = Logger(service="muse-cloud")
tracer = Tracer(service="muse-cloud")
app = APIGatewayHttpResolver(enable_validation=True)
app.enable_swagger(path="/swagger", title="Muse Cloud API", version="1")
app.include_router(wire_v0.router)
app.include_router(token_routes.router)


def caller() -> Caller:
    found: Caller = app.context["caller"]
    return found


def _json(status: int, body: Any) -> Response[Any]:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


def _document(answer: DocumentAnswer) -> Response[Any]:
    """Inline, or a redirect to the same document when it would outgrow a Lambda response."""
    if answer.url is not None:
        return Response(302, "text/plain", "", headers={"Location": answer.url})
    return _json(200, answer.body)


@app.exception_handler(ServiceError)  # type: ignore[untyped-decorator]
def _service_error(error: ServiceError) -> Response[Any]:
    return _json(error.status, error.as_dict())


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def _invalid_request(error: RequestValidationError) -> Response[Any]:
    first = (error.errors() or [{}])[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    message = f"{where}: {first.get('msg', 'invalid request')}"
    return _json(422, {"code": "invalid_request", "message": message, "item": where})


@app.not_found
def _no_route(_: Exception) -> Response[Any]:
    return _json(404, {"code": "no_such_route", "message": "no such route", "item": None})


@app.get("/openapi.json")
def openapi_document() -> Response[Any]:
    return Response(200, "application/json", app.get_openapi_json_schema(title="Muse Cloud API"))


@app.post("/api/repos")
def create_repo(body: CreateRepo) -> Response[Any]:
    repo = RepoService().create(
        caller(), body.owner, body.name, body.visibility, body.initialize, body.domain
    )
    return _json(201, repo.as_dict())


@app.get("/api/repos/by-slug/<owner>/<name>")
def repo_by_slug(owner: str, name: str) -> dict[str, Any]:
    return RepoService().by_slug(caller(), owner, name).as_dict()


@app.get("/api/repos/<repo_id>")
def get_repo(repo_id: str) -> dict[str, Any]:
    return RepoService().get(caller(), repo_id).as_dict()


@app.delete("/api/repos/<repo_id>")
def delete_repo(repo_id: str) -> Response[Any]:
    RepoService().delete(caller(), repo_id)
    return Response(204, "application/json", "")


@app.get("/api/repos/<repo_id>/collaborators")
def list_collaborators(repo_id: str) -> dict[str, Any]:
    return {"collaborators": RepoService().list_collaborators(caller(), repo_id)}


@app.put("/api/repos/<repo_id>/collaborators/<handle>")
def set_collaborator(repo_id: str, handle: str, body: SetCollaborator) -> dict[str, Any]:
    RepoService().set_collaborator(caller(), repo_id, handle, body.role)
    return {"handle": handle, "role": body.role}


@app.delete("/api/repos/<repo_id>/collaborators/<handle>")
def remove_collaborator(repo_id: str, handle: str) -> Response[Any]:
    RepoService().remove_collaborator(caller(), repo_id, handle)
    return Response(204, "application/json", "")


@app.post("/api/identities")
def register_identity(body: RegisterIdentity) -> Response[Any]:
    identity = IdentityService().register(
        caller(), body.handle, body.public_key, body.is_admin, body.is_agent
    )
    answer = {
        "identity_id": identity.identity_id,
        "handle": identity.handle,
        "is_admin": identity.is_admin,
        "is_agent": identity.is_agent,
    }
    return _json(201, answer)


@app.get("/api/identities/me")
def who_am_i() -> dict[str, Any]:
    return IdentityService().describe(caller())


@app.get("/<owner>/<repo>/refs")
def refs(owner: str, repo: str) -> dict[str, Any]:
    return HistoryService().branch_heads(caller(), owner, repo)


@app.post("/<owner>/<repo>/push/mpack-presign")
def presign_push(owner: str, repo: str, body: PresignPush) -> dict[str, Any]:
    return PushService().presign(
        caller(), owner, repo, body.mpack_key, body.size_bytes, body.branch, body.head, body.force
    )


@app.post("/<owner>/<repo>/push/unpack-mpack")
def unpack_push(owner: str, repo: str, body: UnpackPush) -> dict[str, Any]:
    return PushService().unpack(
        caller(), owner, repo, body.mpack_key, body.branch, body.head, body.force
    )


@app.get("/<owner>/<repo>/push/<push_id>")
def push_status(owner: str, repo: str, push_id: str) -> dict[str, Any]:
    return PushService().status(caller(), owner, repo, push_id)


@app.get("/<owner>/<repo>/commits/<commit_id>")
def get_commit(owner: str, repo: str, commit_id: str) -> Response[Any]:
    return _document(HistoryService().commit(caller(), owner, repo, commit_id))


@app.get("/<owner>/<repo>/log")
def log(
    owner: str,
    repo: str,
    branch: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query()] = 50,
    cursor: Annotated[str | None, Query()] = None,
) -> Response[Any]:
    return _document(HistoryService().log(caller(), owner, repo, branch, limit, cursor))


@app.get("/<owner>/<repo>/snapshots/<snapshot_id>")
def get_snapshot(owner: str, repo: str, snapshot_id: str) -> Response[Any]:
    return _document(HistoryService().snapshot(caller(), owner, repo, snapshot_id))


@app.get("/<owner>/<repo>/objects/<object_id>")
@wire_v0.binary_answer
def get_object(owner: str, repo: str, object_id: str) -> Response[Any]:
    answer = HistoryService().object(caller(), owner, repo, object_id)
    if answer.url is not None:
        return Response(302, "text/plain", "", headers={"Location": answer.url})
    return Response(200, "application/octet-stream", answer.data or b"")


@app.post("/<owner>/<repo>/fetch/mpack")
def fetch_mpack(owner: str, repo: str, body: FetchRequest) -> dict[str, Any]:
    return FetchService().fetch(caller(), owner, repo, body.want, body.have)


@cache
def _bootstrap_admin() -> None:
    """Once per process: the deploy-time first admin (a no-op once registered).

    A failure is logged, not raised, and not retried: a rotated key (409 handle_taken) or a bad
    one would otherwise fail every request, and the first admin is not needed to serve them.
    """
    key = os.environ.get("MUSE_BOOTSTRAP_ADMIN_PUBLIC_KEY", "")
    if not key:
        return
    try:
        IdentityStore().ensure_bootstrap_admin(key)
    except Exception as error:
        logger.warning("bootstrap admin not registered", error=str(error), exc_info=True)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        _bootstrap_admin()
        who = http.identify(event, IdentityStore())
        # v0 bodies carry bin values, which the JSON translation refuses: they decode there.
        routed = event if wire_v0.takes_raw_body(event) else http.body_as_json(event)
        app.append_context(caller=who)  # type: ignore[no-untyped-call]
        answer = app.resolve(routed, context)
    except ServiceError as error:
        return http.error_answer(error)
    except Exception:
        # Anything unforeseen is still an error answer with a code (protocol section 4).
        logger.exception("unhandled error")
        return http.error_answer(ServiceError(500, "internal_error", "internal server error"))
    return http.negotiate(event, answer)
