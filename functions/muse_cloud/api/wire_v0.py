"""The Muse client's wire protocol v0 routes (``muse-wire-v0.md``), a Powertools Router.

Bodies are msgpack maps with bin values (object contents), which JSON cannot carry: these
routes read the raw body through the one decoder themselves (``raw_body_route``). Answers are
msgpack whatever ``Accept`` says (the client parses nothing else); errors stay the API's JSON
``{code, message, item}``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import msgpack
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from muse_cloud.api import http
from muse_cloud.api.edge import ANYONE, binary_answer, caller, raw_body_route, services
from muse_cloud.api.routes import documented
from muse_cloud.domain.errors import ServiceError

router = Router()  # type: ignore[no-untyped-call]
MSGPACK_ANSWER = documented()


def _body() -> dict[str, Any]:
    """The request's msgpack map (JSON when the client says so, as release create does)."""
    decoded = http.decode_body(router.current_event.raw_event, allow_bytes=True)
    if decoded is None:
        return {}
    if not isinstance(decoded, dict):
        raise ServiceError("malformed_body", "the body must be a map", "body")
    return decoded


def _answer(body: dict[str, Any] | bytes, status: int = 200) -> Response[Any]:
    data = body if isinstance(body, bytes) else msgpack.packb(body, use_bin_type=True)
    return Response(status, http.MSGPACK, data)


@router.post("/<owner>/<repo>/filter-objects", responses=MSGPACK_ANSWER, security=ANYONE)
@binary_answer
@raw_body_route
def filter_objects(owner: str, repo: str) -> Response[Any]:
    body = _body()
    return _answer(
        services(router).wire_v0.filter_objects(caller(router), owner, repo, body.get("object_ids"))
    )


@router.post("/<owner>/<repo>/presign", responses=MSGPACK_ANSWER, security=ANYONE)
@binary_answer
@raw_body_route
def presign(owner: str, repo: str) -> Response[Any]:
    body = _body()
    service = services(router).wire_v0
    return _answer(
        service.presign(caller(router), owner, repo, body.get("object_ids"), body.get("direction"))
    )


@router.post("/<owner>/<repo>/push/objects", responses=MSGPACK_ANSWER, security=ANYONE)
@binary_answer
@raw_body_route
def push_objects(owner: str, repo: str) -> Response[Any]:
    body = _body()
    return _answer(
        services(router).wire_v0.put_objects(caller(router), owner, repo, body.get("objects"))
    )


@router.post("/<owner>/<repo>/push", responses=MSGPACK_ANSWER, security=ANYONE)
@binary_answer
@raw_body_route
def push(owner: str, repo: str) -> Response[Any]:
    body = _body()
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise ServiceError("invalid_body", "force must be a boolean", "force")
    return _answer(
        services(router).wire_v0.push(
            caller(router), owner, repo, body.get("bundle"), body.get("branch"), force
        )
    )


@router.post("/<owner>/<repo>/fetch", responses=MSGPACK_ANSWER, security=ANYONE)
@binary_answer
@raw_body_route
def fetch(owner: str, repo: str) -> Response[Any]:
    body = _body()
    service = services(router).wire_v0
    return _answer(
        service.fetch(caller(router), owner, repo, body.get("want", []), body.get("have", []))
    )


@router.post("/<owner>/<repo>/negotiate", responses=MSGPACK_ANSWER, security=ANYONE)
@binary_answer
@raw_body_route
def negotiate(owner: str, repo: str) -> Response[Any]:
    body = _body()
    service = services(router).wire_v0
    return _answer(
        service.negotiate(caller(router), owner, repo, body.get("want", []), body.get("have", []))
    )


@router.post("/<owner>/<repo>/tags", responses=MSGPACK_ANSWER, security=ANYONE)
@binary_answer
@raw_body_route
def add_tags(owner: str, repo: str) -> Response[Any]:
    body = _body()
    return _answer(
        services(router).releases.add_tags(caller(router), owner, repo, body.get("tags"))
    )


@router.get("/<owner>/<repo>/tags", responses=MSGPACK_ANSWER, security=ANYONE)
@binary_answer
def list_tags(owner: str, repo: str) -> Response[Any]:
    return _answer(services(router).releases.tags(caller(router), owner, repo))


@router.post("/<owner>/<repo>/releases", responses=MSGPACK_ANSWER, security=ANYONE)
@binary_answer
@raw_body_route
def create_release(owner: str, repo: str) -> Response[Any]:
    return _answer(services(router).releases.create(caller(router), owner, repo, _body()), 201)


@router.get("/<owner>/<repo>/releases", responses=MSGPACK_ANSWER, security=ANYONE)
@binary_answer
def list_releases(owner: str, repo: str) -> Response[Any]:
    channel = router.current_event.get_query_string_value("channel")
    drafts = router.current_event.get_query_string_value("include_drafts", "") in ("1", "true")
    return _answer(services(router).releases.list(caller(router), owner, repo, channel, drafts))


@router.delete("/<owner>/<repo>/releases/<tag>", responses=MSGPACK_ANSWER, security=ANYONE)
@binary_answer
def retract_release(owner: str, repo: str, tag: str) -> Response[Any]:
    # The client percent-encodes the tag, "/" included; the route sees it raw.
    return _answer(services(router).releases.retract(caller(router), owner, repo, unquote(tag)))
