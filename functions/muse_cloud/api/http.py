"""Adapting API Gateway HTTP API v2 events: bodies read through one bounded decoder, msgpack
answers when asked for, and errors as ``{code, message, item}`` with the status of their code."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from array import array
from itertools import accumulate
from typing import Any, NoReturn

import msgpack

from muse_cloud.api.statuses import http_status
from muse_cloud.auth.tokens import header
from muse_cloud.domain.errors import ServiceError
from muse_core.errors import describe

MSGPACK = "application/x-msgpack"
JSON = "application/json"
# Lambda's limit on a synchronous request; the local stack has none of its own.
MAX_BODY_BYTES = 6 * 1024 * 1024
# The request models are two levels deep; fields they ignore get as much again, and more.
MAX_BODY_DEPTH = 32
# Maps, arrays and scalars of one body: checking each costs a microsecond, and the longest
# list a route takes (fetch's ``have``) is one id per branch.
MAX_BODY_VALUES = 100_000
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
# As signed bytes: an opening bracket is +1, a closing one -1.
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise _malformed("the body is not valid base64", "body") from None
    return body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)


def _header(event: dict[str, Any], name: str) -> str:
    return header(event.get("headers") or {}, name) or ""


def _malformed(message: str, item: str) -> ServiceError:
    return ServiceError("malformed_body", message, item)


def decode_body(event: dict[str, Any], *, allow_bytes: bool = False) -> Any:
    """The one decoding path of every route: a JSON or msgpack body, bounded in size and depth,
    every failure a coded 4xx; None when there is no body. Binary values are refused unless
    ``allow_bytes`` (wire v0 carries object contents as bin)."""
    data = raw_body(event)
    if not data:
        return None
    if len(data) > MAX_BODY_BYTES:
        raise ServiceError(
            "limit_exceeded", f"the body is larger than {MAX_BODY_BYTES} bytes", "body"
        )
    media_type = _header(event, "content-type").partition(";")[0].strip().lower()
    if media_type == MSGPACK:
        value = _decode_msgpack(data)
    elif media_type in ("", JSON):
        value = _decode_json(data)
    else:
        raise ServiceError(
            "unsupported_media_type",
            f"a body must be {JSON} or {MSGPACK}",
            _header(event, "content-type")[:100],
        )
    _check_values(value, allow_bytes)
    return value


def body_as_json(event: dict[str, Any]) -> dict[str, Any]:
    """The decoded body handed to the resolver as plain JSON (the resolver validates JSON only,
    and would answer a body it cannot read with a 500, or a content type it does not know with an
    uncoded 415)."""
    data = raw_body(event)
    value = decode_body(event)
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    return {
        **event,
        "body": json.dumps(value) if data else "",
        "isBase64Encoded": False,
        "headers": {**headers, "content-type": JSON},
    }


def _decode_msgpack(data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except UnicodeDecodeError as error:
        raise _malformed(f"a msgpack string is not UTF-8 (byte {error.start})", "body") from None
    except msgpack.StackError:
        raise _malformed("the msgpack body nests deeper than it decodes", "body") from None
    except (ValueError, TypeError) as error:
        raise _malformed(f"the msgpack body does not decode: {error}", "body") from None


def _decode_json(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _malformed(f"the body is not UTF-8 (byte {error.start})", "body") from None
    depth, containers = _json_shape(text)
    if depth > MAX_BODY_DEPTH:
        raise _malformed(f"the body nests more than {MAX_BODY_DEPTH} objects and arrays", "body")
    if containers > MAX_BODY_VALUES:
        # Refused before parsing: json.loads spends a microsecond on each empty array.
        raise _too_many_values()
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise _malformed(
            f"the body is not JSON: {error.msg} at character {error.pos}", "body"
        ) from None
    except ValueError:
        # int() refuses a literal over sys.get_int_max_str_digits() digits.
        raise _malformed("the body holds an integer of thousands of digits", "body") from None


def _refuse_constant(name: str) -> NoReturn:
    raise _malformed(f"{name} is not a JSON number", "body")


def _json_shape(text: str) -> tuple[int, int]:
    """How deep the body's arrays and objects nest, and how many there are, counted without
    parsing (json.loads would recurse once per level)."""
    outside_strings = _JSON_STRING.sub("", text).encode("utf-8")
    steps = array("b", outside_strings.translate(_BRACKET_STEPS, _NOT_A_BRACKET))
    return max(accumulate(steps), default=0), steps.count(1)


def _too_many_values() -> ServiceError:
    return ServiceError(
        "limit_exceeded", f"the body holds more than {MAX_BODY_VALUES} values", "body"
    )


# Where in the body a value sits: (parent, key), kept as links so none is rendered unless needed.
_Where = tuple[Any, object] | None


def _field(where: _Where) -> str:
    segments: list[str] = []
    while where is not None:
        where, key = where
        if isinstance(key, int):
            segments.append(f"[{key}]")
        elif isinstance(key, str) and _is_utf8(key):
            segments.append(f".{key[:40]}")
        else:
            segments.append("." + describe(key, 40))
    return "body" + "".join(reversed(segments))


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_values(value: Any, allow_bytes: bool) -> None:
    """Too deep, a string that is not UTF-8 (a lone surrogate), an integer outside 64 bits, a
    float that is not finite, or a type JSON has not (bytes unless allowed): each named by
    where it sits."""
    pending: list[tuple[Any, int, _Where]] = [(value, 0, None)]
    unchecked = MAX_BODY_VALUES - 1
    while pending:
        item, depth, where = pending.pop()
        if isinstance(item, dict | list):
            unchecked -= len(item)
            if unchecked < 0:
                raise _too_many_values()
            if depth >= MAX_BODY_DEPTH:
                raise _malformed(
                    f"the body nests more than {MAX_BODY_DEPTH} objects and arrays", _field(where)
                )
            entries = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in entries:
                if isinstance(item, dict) and not (isinstance(key, str) and _is_utf8(key)):
                    raise _malformed("a key is not a UTF-8 string", _field((where, key)))
                pending.append((child, depth + 1, (where, key)))
        elif isinstance(item, str):
            if not _is_utf8(item):
                raise _malformed("a string is not valid UTF-8", _field(where))
        elif isinstance(item, bool) or item is None or (allow_bytes and isinstance(item, bytes)):
            continue
        elif isinstance(item, int):
            if not -(2**63) <= item < 2**64:
                raise _malformed("an integer does not fit in 64 bits", _field(where))
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise _malformed("a number is not finite", _field(where))
        else:
            raise _malformed(f"a {type(item).__name__} value is not JSON", _field(where))


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


def error_headers(error: ServiceError) -> dict[str, str]:
    """An error answer's headers: a refusal that passes with time says when (RFC 9110)."""
    headers = {"Content-Type": JSON}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return headers


def error_answer(error: ServiceError) -> dict[str, Any]:
    return {
        "statusCode": http_status(error),
        "headers": error_headers(error),
        "body": json.dumps(error.as_dict()),
        "isBase64Encoded": False,
    }
