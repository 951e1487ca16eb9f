"""Typed helpers over the low-level DynamoDB client: (de)serialisation and batched I/O.

moto never returns ``UnprocessedItems`` nor enforces the 25-item cap of BatchWriteItem, so the
caps are enforced here and the retry loops are exercised by real AWS only.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from muse_cloud import aws
from muse_cloud.config import settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

BATCH_WRITE_MAX = 25
BATCH_GET_MAX = 100
TRANSACTION_MAX = 100
_PARALLEL_WRITERS = 8
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

Item = dict[str, Any]
WireItem = dict[str, "AttributeValueTypeDef"]


def table() -> str:
    return settings().table_name


def to_wire(item: Mapping[str, Any]) -> WireItem:
    return {k: _to_wire_value(v) for k, v in item.items() if v is not None}


def _to_wire_value(value: Any) -> AttributeValueTypeDef:
    # The types every item is made of, without the serializer's general dispatch.
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bytes:
        return {"B": value}
    if kind is int:
        return {"N": str(value)}
    return _serializer.serialize(value)


def from_wire(item: Mapping[str, Any]) -> Item:
    out: Item = {}
    for key, value in item.items():
        plain = _deserializer.deserialize(value)
        if isinstance(plain, Binary):
            plain = plain.value  # type: ignore[attr-defined]
        out[key] = plain
    return out


def pack_ids(ids: Sequence[str]) -> bytes | None:
    """A list of hex ids as one binary attribute: half the bytes of the strings, and one value
    to (de)serialise instead of a list of them."""
    return b"".join(bytes.fromhex(i) for i in ids) or None


def unpack_ids(packed: bytes | None) -> tuple[str, ...]:
    raw = packed or b""
    return tuple(raw[at : at + 32].hex() for at in range(0, len(raw), 32))


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def get_item(key: Mapping[str, str], consistent: bool = True) -> Item | None:
    answer = aws.dynamodb().get_item(TableName=table(), Key=to_wire(key), ConsistentRead=consistent)
    raw = answer.get("Item")
    return from_wire(raw) if raw else None


def put_item(item: Mapping[str, Any]) -> None:
    aws.dynamodb().put_item(TableName=table(), Item=to_wire(item))


def batch_write(items: Sequence[Mapping[str, Any]], ordered: bool = False) -> int:
    """Write items in 25-item batches, several batches at once unless ``ordered`` asks for
    each batch to land before the next starts; returns the requests made."""
    batches = [list(batch) for batch in chunks(items, BATCH_WRITE_MAX)]
    if ordered or len(batches) <= 1:
        return sum(_write_batch(batch) for batch in batches)
    with ThreadPoolExecutor(max_workers=_PARALLEL_WRITERS) as pool:
        return sum(pool.map(_write_batch, batches))


def _write_batch(batch: list[Mapping[str, Any]]) -> int:
    client = aws.dynamodb()
    pending: list[Any] = [{"PutRequest": {"Item": to_wire(item)}} for item in batch]
    requests = 0
    delay = 0.05
    while pending:
        requests += 1
        answer = client.batch_write_item(RequestItems={table(): pending})
        pending = list(answer.get("UnprocessedItems", {}).get(table(), []))
        if pending:
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    return requests


def batch_get(keys: Iterable[Mapping[str, str]], projection: str | None = None) -> list[Item]:
    """Every existing item among ``keys`` (strongly consistent, in no particular order)."""
    client = aws.dynamodb()
    unique = list({(k["pk"], k["sk"]): k for k in keys}.values())
    found: list[Item] = []
    for batch in chunks(unique, BATCH_GET_MAX):
        request: dict[str, Any] = {"Keys": [to_wire(k) for k in batch], "ConsistentRead": True}
        if projection:
            request["ProjectionExpression"] = projection
        pending: dict[str, Any] = {table(): request}
        delay = 0.05
        while pending:
            answer = client.batch_get_item(RequestItems=pending)
            found.extend(from_wire(i) for i in answer.get("Responses", {}).get(table(), []))
            pending = dict(answer.get("UnprocessedKeys", {}))
            if pending:
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
    return found


def query_prefix(pk: str, sk_prefix: str) -> list[Item]:
    client = aws.dynamodb()
    items: list[Item] = []
    request: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": sk_prefix}},
        "ConsistentRead": True,
    }
    while True:
        answer = client.query(**request)
        items.extend(from_wire(i) for i in answer.get("Items", []))
        if "LastEvaluatedKey" not in answer:
            return items
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def is_conditional_failure(error: Exception) -> bool:
    """A condition did not hold (as opposed to a transient conflict, which is worth a retry)."""
    response = getattr(error, "response", {})
    code = response.get("Error", {}).get("Code", "")
    if code == "ConditionalCheckFailedException":
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = [str(r.get("Code", "None")) for r in response.get("CancellationReasons", [])]
    # Without reasons (moto omits them at times) the cancellation can only be a condition.
    return not reasons or (
        "ConditionalCheckFailed" in reasons
        and not any(r not in ("ConditionalCheckFailed", "None") for r in reasons)
    )
