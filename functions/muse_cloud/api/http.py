"""Adapting API Gateway HTTP API v2 events: the caller's identity from the signed request, msgpack
bodies in and out, and errors as ``{code, message, item}``."""

from __future__ import annotations

import base64
import json
from typing import Any

import msgpack

from muse_cloud.auth.authenticate import authenticate
from muse_cloud.auth.identities import Caller, IdentityStore
from muse_cloud.errors import ServiceError

MSGPACK = "application/x-msgpack"


def raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode() if isinstance(body, str) else bytes(body)


def _header(event: dict[str, Any], name: str) -> str:
    return str({k.lower(): v for k, v in (event.get("headers") or {}).items()}.get(name, ""))


def identify(event: dict[str, Any], identities: IdentityStore) -> Caller:
    """The signature covers the exact path, query and body bytes the client sent."""
    query = event.get("rawQueryString") or ""
    path = event.get("rawPath") or "/"
    method = event.get("requestContext", {}).get("http", {}).get("method", "GET")
    return authenticate(
        event.get("headers") or {},
        method,
        f"{path}?{query}" if query else path,
        raw_body(event),
        identities,
    )


def msgpack_body_as_json(event: dict[str, Any]) -> dict[str, Any]:
    """Requests may be msgpack; the resolver validates JSON, so translate before routing."""
    if not _header(event, "content-type").startswith(MSGPACK):
        return event
    try:
        decoded = msgpack.unpackb(raw_body(event), raw=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        raise ServiceError(
            400, "malformed_body", "the msgpack body does not decode", None
        ) from None
    try:
        as_json = json.dumps(decoded)
    except (TypeError, ValueError):
        # Binary strings (or binary map keys): no request field is binary.
        raise ServiceError(
            400, "malformed_body", "the msgpack body holds values JSON cannot carry", None
        ) from None
    translated = dict(event)
    translated["body"] = as_json
    translated["isBase64Encoded"] = False
    headers = dict(event.get("headers") or {})
    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    headers["content-type"] = "application/json"
    translated["headers"] = headers
    return translated


def negotiate(event: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """JSON answers become msgpack when the client's Accept header asks for it.

    Errors stay JSON (protocol section 4), like the ones refused before routing.
    """
    if MSGPACK not in _header(event, "accept") or int(response.get("statusCode", 200)) >= 400:
        return response
    headers = response.get("headers") or {}
    content_type = headers.get("Content-Type", headers.get("content-type", ""))
    if not content_type.startswith("application/json") or response.get("isBase64Encoded"):
        return response
    body = json.loads(response.get("body") or "null")
    packed = msgpack.packb(body, use_bin_type=True)
    return {
        **response,
        "body": base64.b64encode(packed).decode(),
        "isBase64Encoded": True,
        "headers": {**headers, "Content-Type": MSGPACK},
    }


def error_answer(error: ServiceError) -> dict[str, Any]:
    return {
        "statusCode": error.status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(error.as_dict()),
        "isBase64Encoded": False,
    }
