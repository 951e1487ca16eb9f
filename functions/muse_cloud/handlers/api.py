"""The API function: API Gateway HTTP API v2 events, routed to the services."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.typing import LambdaContext

from muse_cloud.api import branches, gc, http, routes, tokens, wire_v0
from muse_cloud.api.edge import ANYONE, SECURITY_SCHEMES, MuseResolver
from muse_cloud.api.statuses import http_status
from muse_cloud.composition import cold_start
from muse_cloud.domain.errors import ServiceError
from muse_cloud.handlers import imported
from muse_cloud.telemetry import logger, metrics, trace_handler

TITLE = "Muse Cloud API"
SWAGGER = "/swagger"

app = MuseResolver()
app.configure_openapi(title=TITLE, version="1", security_schemes=SECURITY_SCHEMES)
for router in (routes.router, wire_v0.router, tokens.router, branches.router, gc.router):
    app.include_router(router)


def _refusal(error: ServiceError) -> Response[Any]:
    return Response(
        http_status(error),
        http.JSON,
        json.dumps(error.as_dict()),
        headers=http.error_headers(error),
    )


@app.exception_handler(ServiceError)  # type: ignore[untyped-decorator]
def _service_error(error: ServiceError) -> Response[Any]:
    return _refusal(error)


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def _invalid_request(error: RequestValidationError) -> Response[Any]:
    first = (error.errors() or [{}])[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    message = f"{where}: {first.get('msg', 'invalid request')}"
    return _refusal(ServiceError("invalid_request", message, where))


@app.not_found
def _no_route(_: Exception) -> Response[Any]:
    return _refusal(ServiceError("no_such_route", "no such route"))


@app.get("/openapi.json", responses=routes.documented(), security=ANYONE)
def openapi_document() -> Response[Any]:
    """The document Swagger shows (one configuration, ``configure_openapi`` above), at the
    path protocol section 4 gives it."""
    return Response(200, "application/json", app.get_openapi_json_schema())


@cache
def _enable_swagger() -> None:
    """Powertools' Swagger page imports its OpenAPI models when it is enabled: 40 ms of every
    cold start, for a page most sandboxes never serve. The first request for it enables it."""
    app.enable_swagger(path=SWAGGER, title=TITLE, version="1")


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@trace_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("rawPath") == SWAGGER:
        _enable_swagger()
    try:
        app.append_context(services=cold_start)  # type: ignore[no-untyped-call]
        answer = app.resolve(event, context)
    except ServiceError as error:
        return http.error_answer(error)
    except Exception:
        # Anything unforeseen is still an error answer with a code (protocol section 4).
        logger.exception("unhandled error")
        return http.error_answer(ServiceError("internal_error", "internal server error"))
    return http.negotiate(event, answer)


imported()
