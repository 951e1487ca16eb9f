"""The Muse client's wire protocol v0 routes (``muse-wire-v0.md``), a Powertools Router.

Bodies are msgpack maps with bin values (object contents), which JSON cannot carry: these
routes read the raw body from the event themselves, and the handler must hand them the event
untranslated (``takes_raw_body``). Answers are msgpack whatever ``Accept`` says (the client
parses nothing else); errors stay the API's JSON ``{code, message, item}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote

import msgpack
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from muse_cloud.api import http
from muse_cloud.auth.identities import Caller
from muse_cloud.errors import ServiceError
from muse_cloud.services.releases import ReleaseService
from muse_cloud.services.wire_v0 import WireV0Service

router = Router()  # type: ignore[no-untyped-call]

_RAW_BODY_ROUTES = re.compile(
    r"/[^/]+/[^/]+/(?:filter-objects|presign|push/objects|push|fetch|negotiate|tags|releases)"
)


def takes_raw_body(event: dict[str, Any]) -> bool:
    """Whether the event is a v0 request whose body this module decodes itself."""
    method = event.get("requestContext", {}).get("http", {}).get("method", "")
    return method == "POST" and _RAW_BODY_ROUTES.fullmatch(event.get("rawPath") or "") is not None


Route = TypeVar("Route", bound=Callable[..., Response[Any]])


def binary_answer(route: Route) -> Route:
    """Powertools validates and JSON-serialises an answer by its route's return annotation,
    which would decode the msgpack bytes as UTF-8: the resolver must not see one."""
    route.__annotations__.pop("return", None)
    return route


def _caller() -> Caller:
    found: Caller = router.context["caller"]
    return found


def _body() -> dict[str, Any]:
    """The request's msgpack map (JSON when the client says so, as release create does)."""
    decoded = http.decode_body(router.current_event.raw_event)
    if decoded is None:
        return {}
    if not isinstance(decoded, dict):
        raise ServiceError(400, "malformed_body", "the body must be a map", "body")
    return decoded


def _answer(body: dict[str, Any] | bytes, status: int = 200) -> Response[Any]:
    data = body if isinstance(body, bytes) else msgpack.packb(body, use_bin_type=True)
    return Response(status, http.MSGPACK, data)


@router.post("/<owner>/<repo>/filter-objects")
@binary_answer
def filter_objects(owner: str, repo: str) -> Response[Any]:
    body = _body()
    return _answer(WireV0Service().filter_objects(_caller(), owner, repo, body.get("object_ids")))


@router.post("/<owner>/<repo>/presign")
@binary_answer
def presign(owner: str, repo: str) -> Response[Any]:
    body = _body()
    service = WireV0Service()
    return _answer(
        service.presign(_caller(), owner, repo, body.get("object_ids"), body.get("direction"))
    )


@router.post("/<owner>/<repo>/push/objects")
@binary_answer
def push_objects(owner: str, repo: str) -> Response[Any]:
    body = _body()
    return _answer(WireV0Service().put_objects(_caller(), owner, repo, body.get("objects")))


@router.post("/<owner>/<repo>/push")
@binary_answer
def push(owner: str, repo: str) -> Response[Any]:
    body = _body()
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise ServiceError(400, "invalid_body", "force must be a boolean", "force")
    return _answer(
        WireV0Service().push(_caller(), owner, repo, body.get("bundle"), body.get("branch"), force)
    )


@router.post("/<owner>/<repo>/fetch")
@binary_answer
def fetch(owner: str, repo: str) -> Response[Any]:
    body = _body()
    service = WireV0Service()
    return _answer(
        service.fetch(_caller(), owner, repo, body.get("want", []), body.get("have", []))
    )


@router.post("/<owner>/<repo>/negotiate")
@binary_answer
def negotiate(owner: str, repo: str) -> Response[Any]:
    body = _body()
    service = WireV0Service()
    return _answer(
        service.negotiate(_caller(), owner, repo, body.get("want", []), body.get("have", []))
    )


@router.post("/<owner>/<repo>/tags")
@binary_answer
def add_tags(owner: str, repo: str) -> Response[Any]:
    body = _body()
    return _answer(ReleaseService().add_tags(_caller(), owner, repo, body.get("tags")))


@router.get("/<owner>/<repo>/tags")
@binary_answer
def list_tags(owner: str, repo: str) -> Response[Any]:
    return _answer(ReleaseService().tags(_caller(), owner, repo))


@router.post("/<owner>/<repo>/releases")
@binary_answer
def create_release(owner: str, repo: str) -> Response[Any]:
    return _answer(ReleaseService().create(_caller(), owner, repo, _body()), 201)


@router.get("/<owner>/<repo>/releases")
@binary_answer
def list_releases(owner: str, repo: str) -> Response[Any]:
    channel = router.current_event.get_query_string_value("channel")
    drafts = router.current_event.get_query_string_value("include_drafts", "") in ("1", "true")
    return _answer(ReleaseService().list(_caller(), owner, repo, channel, drafts))


@router.delete("/<owner>/<repo>/releases/<tag>")
@binary_answer
def retract_release(owner: str, repo: str, tag: str) -> Response[Any]:
    # The client percent-encodes the tag, "/" included; the route sees it raw.
    return _answer(ReleaseService().retract(_caller(), owner, repo, unquote(tag)))
