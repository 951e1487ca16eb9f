"""Invoking the API handler with API Gateway HTTP API v2 events, signed like a client signs."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from muse_cloud.handlers.api import lambda_handler
from muse_cloud_cli.signer import KeyFile, sign_request
from muse_cloud_dev.event_source import LocalLambdaContext


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    method: str,
    path: str,
    body: Any = None,
    key: KeyFile | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> Answer:
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    query_string = urlencode(query or {})
    sent = {"content-type": "application/json", **(headers or {})}
    if key is not None:
        target = f"{path}?{query_string}" if query_string else path
        sent["authorization"] = sign_request(key, method, target, data)
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query_string,
        "headers": sent,
        "queryStringParameters": query or None,
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "127.0.0.1"},
            "requestId": "test",
            "stage": "$default",
        },
        "body": base64.b64encode(data).decode(),
        "isBase64Encoded": True,
    }
    answer = lambda_handler(event, LocalLambdaContext("ApiFunction"))
    payload = answer.get("body") or ""
    raw_answer = base64.b64decode(payload) if answer.get("isBase64Encoded") else payload.encode()
    return Answer(answer["statusCode"], answer.get("headers") or {}, raw_answer)
