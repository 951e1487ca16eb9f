"""The local stack's moto answers a Query from the partition it names, as DynamoDB does, without
reading the rest of the table."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto.backends import get_backend

from muse_cloud_dev import moto_state
from muse_cloud_dev.provision import Provisioned


@pytest.fixture
def table(stack: Provisioned, monkeypatch: pytest.MonkeyPatch) -> str:
    moto_state.keep_moto_fast()
    name = stack.names.table
    with boto3.resource("dynamodb", region_name="us-east-1").Table(name).batch_writer() as batch:
        for partition in ("A", "B", "C"):
            for n in range(30):
                batch.put_item(Item={"pk": partition, "sk": f"{n % 3}#{n:03d}", "n": n})

    def whole_table(self: Any) -> list[Any]:
        raise AssertionError("a Query read the whole table")

    monkeypatch.setattr(moto_state, "_original_all_items", whole_table)
    return name


def _query(table: str, **kwargs: Any) -> list[tuple[str, str]]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    found: list[tuple[str, str]] = []
    start: dict[str, Any] = {}
    while True:
        page = client.query(TableName=table, **kwargs, **start)
        found.extend((i["pk"]["S"], i["sk"]["S"]) for i in page["Items"])
        if "LastEvaluatedKey" not in page:
            return found
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def test_a_query_answers_its_partition_in_key_order(table: str) -> None:
    every = _query(
        table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "B"}}
    )
    assert every == sorted(("B", f"{n % 3}#{n:03d}") for n in range(30))


def test_conditions_order_and_pages_apply_within_the_partition(table: str) -> None:
    newest_first = _query(
        table,
        KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
        ExpressionAttributeValues={":p": {"S": "C"}, ":s": {"S": "1#"}},
        ScanIndexForward=False,
        Limit=4,
    )
    expected = sorted((("C", f"1#{n:03d}") for n in range(30) if n % 3 == 1), reverse=True)
    assert newest_first == expected


def test_an_absent_partition_is_empty_and_stays_absent(table: str) -> None:
    values = {":p": {"S": "nobody"}}
    assert _query(table, KeyConditionExpression="pk = :p", ExpressionAttributeValues=values) == []
    stored = get_backend("dynamodb")[moto_state.ACCOUNT][moto_state.REGION].tables[table]
    assert {key.value for key in stored.items} == {"A", "B", "C"}
