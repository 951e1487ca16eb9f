"""The API's resolver and the middlewares at its edge: who is asking, and the body as JSON.

Powertools validates a request before any middleware an app or a route adds, but a body must be
read (msgpack or JSON, bounded: ``http.decode_body``) before it can be validated, and a caller
must be known before its body is judged: an anonymous request to a route that needs a signature
is a 401 whatever its body. So these middlewares are placed in front of Powertools' own request
validation, in the slot the resolver keeps for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter, Router
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from muse_cloud.api import http
from muse_cloud.auth import tokens
from muse_cloud.auth.authenticate import authenticate
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import ANONYMOUS, Caller

if TYPE_CHECKING:
    from muse_cloud.composition import ColdStart, Services

Middleware = Callable[[APIGatewayHttpResolver, NextMiddleware], Response[Any]]

MSIGN = "MSign"
BEARER = "Bearer"
# The OpenAPI security scheme objects as JSON: Powertools validates them into its models when it
# writes the document, and importing those models at a cold start cost 40 ms.
SECURITY_SCHEMES: dict[str, Any] = {
    MSIGN: {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": (
            'MSign keyId="<identity_id>",ts="<unix seconds>",nonce="<16+ chars>",'
            'sig="<base64url Ed25519 signature>" over MSIGN-V1, method, path?query, ts, '
            "nonce and sha256(body) (protocol section 5)"
        ),
    },
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "a personal access token, mct_<id>_<secret> (wire v0)",
    },
}
# Routes that every kind of caller may call: the anonymous one reads public repositories.
ANYONE: list[dict[str, list[str]]] = [{MSIGN: []}, {BEARER: []}, {}]
# Routes only a signed request may call.
SIGNED: list[dict[str, list[str]]] = [{MSIGN: []}, {BEARER: []}]
MSIGN_ONLY: list[dict[str, list[str]]] = [{MSIGN: []}]


def caller(router: Router | APIGatewayHttpResolver) -> Caller:
    found: Caller = router.context["caller"]
    return found


def services(router: Router | APIGatewayHttpResolver) -> Services:
    """The services of this sandbox, built on the first request that needs them (a route that
    needs none, such as ``/openapi.json``, never reads the settings)."""
    built: ColdStart[Services] = router.context["services"]
    return built.get()


def authenticated(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """The caller, from the signature or token over the exact bytes the client sent (an
    unsigned request needs no store: the OpenAPI document is served without the settings)."""
    event = app.current_event.raw_event
    headers = event.get("headers") or {}
    who = ANONYMOUS
    if tokens.header(headers, "authorization") is not None:
        query = event.get("rawQueryString") or ""
        path = event.get("rawPath") or "/"
        stores = services(app).stores
        who = authenticate(
            headers,
            app.current_event.request_context.http.method,
            f"{path}?{query}" if query else path,
            http.raw_body(event),
            stores.identities,
            stores.tokens,
        )
    route = app.context.get("_route")
    if who.is_anonymous and route is not None and getattr(route.func, "signed_only", False):
        raise ServiceError("auth_required", "this route needs a signed request")
    app.append_context(caller=who)  # type: ignore[no-untyped-call]
    return next_middleware(app)


def read_body(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """The body, whatever it was sent as, handed to validation as JSON. Routes that read bin
    values (wire v0) decode the raw body themselves and say so with ``takes_raw_body``."""
    route = app.context.get("_route")
    if route is None or not getattr(route.func, "takes_raw_body", False):
        # Where Powertools keeps the event of the invocation, for the app and its routers alike.
        BaseRouter.current_event = APIGatewayProxyEventV2(
            http.body_as_json(app.current_event.raw_event)
        )
    return next_middleware(app)


Route = TypeVar("Route", bound=Callable[..., Any])


def raw_body_route(route: Route) -> Route:
    """Mark a route that decodes its own body (bin values, which JSON cannot carry)."""
    route.takes_raw_body = True  # type: ignore[attr-defined]
    return route


def signed_only(route: Route) -> Route:
    """Mark a route an anonymous request may not call whatever the repository (no repository is
    named, so refusing first leaks nothing): it is refused before its body is read."""
    route.signed_only = True  # type: ignore[attr-defined]
    return route


def binary_answer(route: Route) -> Route:
    """Powertools validates and JSON-serialises an answer by its route's return annotation,
    which would decode bytes as UTF-8: the resolver must not see one."""
    route.__annotations__.pop("return", None)
    return route


class MuseResolver(APIGatewayHttpResolver):
    def __init__(self) -> None:
        super().__init__(enable_validation=True)
        validation: Any = self._request_validation_middleware
        edge: Any = _chain([authenticated, read_body, validation])
        self._request_validation_middleware = edge


def _chain(middlewares: list[Any]) -> Middleware:
    def run(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
        def step(at: int) -> Any:
            if at == len(middlewares):
                return next_middleware
            return lambda current: middlewares[at](current, step(at + 1))

        answer: Response[Any] = step(0)(app)
        return answer

    return run
