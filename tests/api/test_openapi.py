"""GET /openapi.json is a valid OpenAPI 3 document of every route; GET /swagger shows it."""

from __future__ import annotations

import re
from typing import Any

from openapi_spec_validator import validate

from muse_cloud.handlers.api import app
from muse_cloud_dev.provision import Provisioned

from .client import call

# Protocol section 4, with the handler's parameter names.
SECTION_4 = {
    ("POST", "/api/repos"),
    ("GET", "/api/repos/{repo_id}"),
    ("DELETE", "/api/repos/{repo_id}"),
    ("POST", "/{owner}/{repo}/push/mpack-presign"),
    ("POST", "/{owner}/{repo}/push/unpack-mpack"),
    ("GET", "/{owner}/{repo}/push/{push_id}"),
    ("GET", "/{owner}/{repo}/refs"),
    ("GET", "/{owner}/{repo}/commits/{commit_id}"),
    ("GET", "/{owner}/{repo}/log"),
    ("GET", "/{owner}/{repo}/snapshots/{snapshot_id}"),
    ("GET", "/{owner}/{repo}/objects/{object_id}"),
    ("POST", "/{owner}/{repo}/fetch/mpack"),
    ("GET", "/openapi.json"),
}
# Routes the implementation adds to the contract.
EXTRAS = {
    ("GET", "/api/repos/by-slug/{owner}/{name}"),
    ("GET", "/api/repos/{repo_id}/collaborators"),
    ("PUT", "/api/repos/{repo_id}/collaborators/{handle}"),
    ("DELETE", "/api/repos/{repo_id}/collaborators/{handle}"),
    ("POST", "/api/identities"),
    ("GET", "/api/identities/me"),
}


def _document(stack: Provisioned) -> dict[str, Any]:
    answer = call("GET", "/openapi.json")
    assert answer.status == 200, answer.body
    assert answer.headers["Content-Type"].startswith("application/json")
    document: dict[str, Any] = answer.json()
    return document


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch", "head", "options"}
    }


def _registered_routes() -> set[tuple[str, str]]:
    routes = [*app._static_routes, *app._dynamic_routes]
    return {
        (route.method.upper(), re.sub(r"<(\w+)>", r"{\1}", route.path))
        for route in routes
        if route.include_in_schema
    }


def test_the_document_is_valid_openapi_3(stack: Provisioned) -> None:
    document = _document(stack)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Muse Cloud API"
    validate(document)


def test_the_document_lists_every_route(stack: Provisioned) -> None:
    operations = _operations(_document(stack))
    assert operations >= SECTION_4, sorted(SECTION_4 - operations)
    registered = _registered_routes()
    assert registered >= SECTION_4 | EXTRAS
    assert operations == registered, (
        sorted(registered - operations),
        sorted(operations - registered),
    )


def test_request_bodies_are_described(stack: Provisioned) -> None:
    document = _document(stack)
    schemas = document["components"]["schemas"]
    for name, fields in (
        ("CreateRepo", {"owner", "name", "visibility"}),
        ("PresignPush", {"mpack_key", "size_bytes", "branch", "head", "force"}),
        ("UnpackPush", {"mpack_key", "branch", "head", "force"}),
        ("FetchRequest", {"want", "have"}),
    ):
        assert fields <= set(schemas[name]["properties"]), name
    create = document["paths"]["/api/repos"]["post"]
    assert "requestBody" in create
    visibility = schemas["CreateRepo"]["properties"]["visibility"]
    assert set(visibility["enum"]) == {"public", "private"}


def test_swagger_is_html(stack: Provisioned) -> None:
    answer = call("GET", "/swagger")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert b"<html" in answer.body.lower() and b"swagger" in answer.body.lower()


def test_answers_and_refusals_are_documented_as_the_server_sends_them(stack: Provisioned) -> None:
    """Every operation names the model of its answer, every refusal the error the server
    answers (``{code, message, item}``), never Powertools' own validation-error shape."""
    document = _document(stack)
    schemes = document["components"]["securitySchemes"]
    assert schemes["MSign"]["type"] == "apiKey" and schemes["MSign"]["in"] == "header"
    assert schemes["MSign"]["name"] == "Authorization"
    assert (schemes["Bearer"]["type"], schemes["Bearer"]["scheme"]) == ("http", "bearer")
    error = {"$ref": "#/components/schemas/ErrorAnswer"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            for status, answer in responses.items():
                if status.startswith(("4", "5")):
                    assert answer["content"]["application/json"]["schema"] == error, (path, status)
            ok = responses.get("200") or responses.get("201") or responses.get("204")
            assert ok is not None, (method, path)
    refs = document["paths"]["/{owner}/{repo}/refs"]["get"]["responses"]["200"]
    assert refs["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RefsAnswer"
    }
    properties = document["components"]["schemas"]["RefsAnswer"]["properties"]
    assert {"repo_id", "domain", "default_branch", "branch_heads", "permissions"} <= set(properties)
