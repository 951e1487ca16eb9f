"""The API tests' stack refuses DynamoDB keys AWS would refuse, which moto accepts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from muse_cloud_dev.server import dynamodb

# DynamoDB's limits on key attribute values (UTF-8 bytes).
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024


def _keys_in(params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every key (or item, which holds its key) a request names, in the client's wire shape."""
    for name in ("Key", "Item"):
        if name in params:
            yield params[name]
    for request in (params.get("RequestItems") or {}).values():
        if isinstance(request, dict):  # BatchGetItem: {table: {"Keys": [...]}}
            yield from request.get("Keys", [])
        else:  # BatchWriteItem: {table: [{"PutRequest": {"Item"}} | {"DeleteRequest": {"Key"}}]}
            for write in request:
                for action in write.values():
                    yield from _keys_in(action)
    for entry in params.get("TransactItems") or []:
        for action in entry.values():
            yield from _keys_in(action)


def _refuse_oversized_keys(params: dict[str, Any], model: Any, **_: Any) -> None:
    for key in _keys_in(params):
        for attribute, limit in (("pk", MAX_PARTITION_KEY_BYTES), ("sk", MAX_SORT_KEY_BYTES)):
            value = key.get(attribute, {}).get("S", "")
            if len(value.encode("utf-8", "surrogatepass")) > limit:
                message = f"One or more parameter values were invalid: {attribute} too large"
                raise ClientError(
                    {"Error": {"Code": "ValidationException", "Message": message}}, model.name
                )


@pytest.fixture(autouse=True)
def dynamodb_key_limits(request: pytest.FixtureRequest) -> None:
    """Installed on the server's DynamoDB client whenever a test runs on the moto stack."""
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack")
        dynamodb().meta.events.register("provide-client-params.dynamodb.*", _refuse_oversized_keys)
