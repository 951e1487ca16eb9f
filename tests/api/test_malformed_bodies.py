"""Malformed request bodies against every POST and PUT route of the OpenAPI document, on the
moto-backed API: each one a coded 4xx naming what is wrong, never a 5xx.

The routes come from ``/openapi.json``, so a route added later is attacked too.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from functools import partial
from typing import Any

import msgpack
import pytest
from histories import linear_history

from muse_cloud.api.http import MAX_BODY_VALUES
from muse_cloud.api.statuses import http_status
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import Caller
from muse_cloud.handlers.api import lambda_handler
from muse_cloud_cli.signer import KeyFile
from muse_cloud_dev.event_source import LocalLambdaContext
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import services, stores
from muse_core.mpack import encode_mpack, mpack_key

from .client import Answer, call
from .test_endpoints import bootstrap_admin, create_repo, expect_error, identity
from .test_endpoints import upload as put_pack

MSGPACK = {"content-type": "application/x-msgpack"}
SURROGATES = ("\ud800", "\udfff", "a\udc80b", "\udc00\ud800")
EXT = msgpack.ExtType(5, b"x")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    fields: tuple[str, ...]
    takes_bin: bool = False


@dataclass(frozen=True)
class Bad:
    name: str
    raw: bytes
    headers: dict[str, str]
    status: int
    code: str


def _nested_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _nested_msgpack(depth: int) -> bytes:
    return b"\x91" * depth + b"\xc0"


def _in_field(field: str, value: bytes) -> bytes:
    return b'{"' + field.encode() + b'": ' + value + b"}"


def _msgpack_field(field: str, value: bytes) -> bytes:
    return b"\x81" + msgpack.packb(field) + value


JSON = {"content-type": "application/json"}


def _malformed(name: str, raw: bytes, headers: dict[str, str] = JSON) -> Bad:
    return Bad(name, raw, headers, 400, "malformed_body")


def _unsupported(content_type: str, raw: bytes) -> Bad:
    return Bad(content_type, raw, {"content-type": content_type}, 415, "unsupported_media_type")


def malformed_bodies(field: str) -> list[Bad]:
    """The table: each body with the status and code it must get; ``field`` is one of the
    route's own body fields, so the bad value sits where the route reads."""
    bad = [
        _malformed("not utf-8", b'{"x": "\xff\xfe"}'),
        _malformed("latin-1", _in_field(field, '"étude"'.encode("latin-1"))),
        _malformed("lone continuation", b"\x80"),
        _malformed("not utf-8, no type", b"\xc3\x28", {}),
        _malformed("not json", b"{not json"),
        _malformed("truncated json", _in_field(field, b'"abc')[:-1]),
        _malformed("NaN", _in_field(field, b"NaN")),
        _malformed("Infinity", _in_field(field, b"-Infinity")),
        _malformed("1e999", _in_field(field, b"1e999")),
        _malformed("5,000 digits", _in_field(field, b"1" + b"0" * 4999)),
        _malformed("4,000 digits", _in_field(field, b"9" * 4000)),
        _malformed("over 64 bits", _in_field(field, b"18446744073709551616")),
        _malformed("surrogate key", b'{"\\ud800": 1}'),
        _malformed("msgpack not utf-8", _msgpack_field(field, b"\xa3\xed\xa0\x80"), MSGPACK),
        _malformed("msgpack bin", _msgpack_field(field, msgpack.packb(b"x")), MSGPACK),
        _malformed("msgpack ext", _msgpack_field(field, msgpack.packb(EXT)), MSGPACK),
        _malformed("msgpack nan", _msgpack_field(field, msgpack.packb(float("nan"))), MSGPACK),
        _malformed("msgpack truncated", _msgpack_field(field, b"\xa5ab"), MSGPACK),
        _malformed("msgpack trailing", msgpack.packb({}) + b"\xc0", MSGPACK),
        _malformed("msgpack reserved byte", b"\xc1", MSGPACK),
        _unsupported("text/plain", b'{"a": 1}'),
        _unsupported("application/x-www-form-urlencoded", b"a=1"),
        _unsupported("multipart/form-data; boundary=x", b"--x--"),
        _unsupported("application/xml", b"<a/>"),
    ]
    for depth in (33, 990, 100_000):
        bad += [
            _malformed(f"json depth {depth}", _nested_json(depth)),
            _malformed(f"json field depth {depth}", _in_field(field, _nested_json(depth))),
            _malformed(f"msgpack depth {depth}", _nested_msgpack(depth), MSGPACK),
            _malformed(
                f"msgpack field depth {depth}",
                _msgpack_field(field, _nested_msgpack(depth)),
                MSGPACK,
            ),
        ]
    for surrogate in SURROGATES:
        escaped = json.dumps(surrogate).encode()  # ASCII escapes: \ud800
        bad.append(_malformed(f"surrogate {escaped.decode()}", _in_field(field, escaped)))
    return bad


def post_and_put_routes() -> list[Route]:
    doc = call("GET", "/openapi.json").json()
    schemas = doc["components"]["schemas"]
    routes: list[Route] = []
    for path, operations in doc["paths"].items():
        for method in ("post", "put"):
            if method not in operations:
                continue
            if "requestBody" not in operations[method]:
                # Wire v0 routes decode their msgpack (bin values allowed) by the same path.
                routes.append(Route(method.upper(), path, ("x",), takes_bin=True))
                continue
            content = operations[method]["requestBody"]["content"]["application/json"]
            schema = schemas[content["schema"]["$ref"].rsplit("/", 1)[1]]
            routes.append(Route(method.upper(), path, tuple(schema["properties"])))
    return routes


@pytest.fixture
def world(stack: Provisioned) -> tuple[KeyFile, dict[str, str]]:
    """An admin who owns olivia/songs, and the values the routes' path parameters take."""
    admin = bootstrap_admin()
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    return admin, {"owner": "olivia", "repo": "songs", "repo_id": repo["repoId"], "handle": "walt"}


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)


def assert_coded(answer: Answer, status: int | None = None, code: str | None = None) -> Any:
    assert 400 <= answer.status < 500, (answer.status, answer.body[:300])
    body = answer.json()
    assert set(body) == {"code", "message", "item"}, body
    assert isinstance(body["code"], str) and body["message"]
    if status is not None:
        assert (answer.status, body["code"]) == (status, code), body
    return body


def test_every_post_and_put_route_is_attacked() -> None:
    # Without a stack: the document alone lists them, and none may be missed silently.
    assert len(post_and_put_routes()) >= 6


def test_every_malformed_body_on_every_route_is_a_coded_4xx(
    world: tuple[KeyFile, dict[str, str]],
) -> None:
    admin, values = world
    cases = 0
    for route in post_and_put_routes():
        path = _fill(route.path, values)
        for bad in malformed_bodies(route.fields[0]):
            if route.takes_bin and bad.name == "msgpack bin":
                continue
            answer = call(route.method, path, raw=bad.raw, key=admin, headers=bad.headers)
            body = assert_coded(answer, bad.status, bad.code)
            assert body["item"], (route.path, bad.name, body)
            cases += 1
        for field in route.fields:
            for surrogate in SURROGATES:
                raw = _in_field(field, json.dumps(surrogate).encode())
                body = assert_coded(
                    call(route.method, path, raw=raw, key=admin), 400, "malformed_body"
                )
                assert body["item"] == f"body.{field}", body
                cases += 1
    assert cases > 6 * 40


def test_where_the_bad_value_sits_is_named(world: tuple[KeyFile, dict[str, str]]) -> None:
    admin, _ = world
    raw = b'{"want": ["ok", {"deep": [1, 18446744073709551616]}]}'
    body = assert_coded(call("POST", "/olivia/songs/fetch/mpack", raw=raw), 400, "malformed_body")
    assert body["item"] == "body.want[1].deep[1]"
    body = assert_coded(
        call("POST", "/api/repos", raw=_nested_json(33), key=admin), 400, "malformed_body"
    )
    assert body["item"] == "body" and "32" in body["message"]


def test_bodies_the_routes_take_still_work(world: tuple[KeyFile, dict[str, str]]) -> None:
    admin, _ = world
    # 32 levels in all (the body's object and 31 arrays), astral and non-ASCII strings, all
    # in a field the route ignores.
    nested: Any = []
    for _ in range(30):
        nested = [nested]
    extra = {"extra": nested, "note": "étude 𝄞", "big": 2**64 - 1, "small": -(2**63)}
    charset = {"content-type": "application/json; charset=utf-8"}
    for name, raw, headers in (
        ("a", json.dumps({"owner": "olivia", "name": "a", **extra}).encode(), {}),
        ("b", msgpack.packb({"owner": "olivia", "name": "b", **extra}), MSGPACK),
        ("c", json.dumps({"owner": "olivia", "name": "c", **extra}).encode(), charset),
    ):
        answer = call("POST", "/api/repos", raw=raw, key=admin, headers=headers)
        assert answer.status == 201, (name, answer.body)


def test_a_body_that_is_not_a_map_or_is_empty_is_refused_with_a_code(
    world: tuple[KeyFile, dict[str, str]],
) -> None:
    admin, _ = world
    for raw in (b"[1]", b'"x"', b"1", b"null", msgpack.packb([1])):
        headers = MSGPACK if raw == msgpack.packb([1]) else {}
        assert_coded(
            call("POST", "/api/repos", raw=raw, key=admin, headers=headers), 422, "invalid_request"
        )
    for content_type in ("text/plain", "multipart/form-data; boundary=x", "application/json"):
        answer = call(
            "POST", "/api/repos", raw=b"", key=admin, headers={"content-type": content_type}
        )
        assert_coded(answer, 422, "invalid_request")


def _raw_event(path: str, body: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": "POST", "path": path},
            "requestId": "t",
            "stage": "$default",
        },
        "body": body,
        "isBase64Encoded": True,
    }


def test_a_body_that_is_not_base64_is_malformed(world: tuple[KeyFile, dict[str, str]]) -> None:
    event = _raw_event("/olivia/songs/fetch/mpack", "not base64!")
    answer = lambda_handler(event, LocalLambdaContext("ApiFunction"))
    assert answer["statusCode"] == 400 and json.loads(answer["body"])["code"] == "malformed_body"


def test_an_anonymous_call_of_a_signed_only_route_is_refused_before_its_body(
    world: tuple[KeyFile, dict[str, str]],
) -> None:
    """Whatever the body, nobody unsigned may create a repository: 401 before 400 or 422."""
    for body in ("not base64!", base64.b64encode(b'{"owner": 5}').decode()):
        answer = lambda_handler(_raw_event("/api/repos", body), LocalLambdaContext("ApiFunction"))
        assert answer["statusCode"] == 401, answer
        assert json.loads(answer["body"])["code"] == "auth_required"


def test_a_body_over_six_mib_is_refused(world: tuple[KeyFile, dict[str, str]]) -> None:
    raw = b'{"want": ["' + b"a" * (6 * 1024 * 1024) + b'"]}'
    answer = call("POST", "/olivia/songs/fetch/mpack", raw=raw)
    assert_coded(answer, 413, "limit_exceeded")


def test_a_surrogate_branch_is_refused_at_presign_and_never_leaves_a_push_processing(
    stack: Provisioned,
) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    history = linear_history(2)
    data = encode_mpack(history.pack())
    key = mpack_key(data)
    presign_path = "/olivia/songs/push/mpack-presign"
    unpack_path = "/olivia/songs/push/unpack-mpack"
    caller, service = Caller("olivia", owner.identity_id), services().push
    for branch in SURROGATES:
        fields = {"mpack_key": key, "size_bytes": len(data)}
        raw = json.dumps({**fields, "branch": branch, "head": history.head}).encode()
        body = expect_error(call("POST", presign_path, raw=raw, key=owner), 400, "malformed_body")
        assert body["item"] == "body.branch"
    assert (
        call("POST", presign_path, {"mpack_key": key, "size_bytes": len(data)}, owner).status == 200
    )
    put_pack(stack, repo["repoId"], data)
    for branch in SURROGATES:
        raw = json.dumps({"mpack_key": key, "branch": branch, "head": history.head}).encode()
        expect_error(call("POST", unpack_path, raw=raw, key=owner), 400, "malformed_body")
        # Past the decoder (another adapter, a direct call), the service refuses it as well.
        request = (key, branch, history.head, False)
        for attempt in (
            partial(service.unpack, caller, "olivia", "songs", *request),
            partial(service.presign, caller, "olivia", "songs", key, len(data), *request[1:]),
        ):
            with pytest.raises(ServiceError) as caught:
                attempt()
            assert (http_status(caught.value), caught.value.code) == (422, "invalid_branch_name")
    record = stores().pushes.get(repo["repoId"], key.removeprefix("sha256:"))
    assert record is not None and record.state != "processing"
    answer = call(
        "POST", unpack_path, {"mpack_key": key, "branch": "main", "head": history.head}, owner
    )
    assert answer.status == 200, answer.body
    assert call("GET", "/olivia/songs/refs").json()["branch_heads"] == {"main": history.head}


def test_a_signed_body_is_checked_against_the_bytes_sent(
    world: tuple[KeyFile, dict[str, str]],
) -> None:
    """The decoder re-serialises the body: the signature still covers what the client sent."""
    admin, _ = world
    raw = b'{ "owner" : "olivia",\n "name": "spaced" }'
    assert call("POST", "/api/repos", raw=raw, key=admin).status == 201


def test_a_body_of_more_values_than_the_budget_is_refused_before_it_is_checked(
    world: tuple[KeyFile, dict[str, str]],
) -> None:
    admin, _ = world

    def repo_body(name: str, extra: int) -> dict[str, Any]:
        # The map, its three fields, and ``extra`` elements: MAX_BODY_VALUES values at most.
        return {"owner": "olivia", "name": name, "extra": [0] * extra}

    fits = MAX_BODY_VALUES - 4
    assert call("POST", "/api/repos", repo_body("full", fits), admin).status == 201
    for raw, headers in (
        (json.dumps(repo_body("over", fits + 1)).encode(), JSON),
        (msgpack.packb(repo_body("over", fits + 1)), MSGPACK),
        # Empty arrays are counted before json.loads builds them.
        (b"[" + b"[]," * MAX_BODY_VALUES + b"[]]", JSON),
    ):
        answer = call("POST", "/api/repos", raw=raw, key=admin, headers=headers)
        assert_coded(answer, 413, "limit_exceeded")
