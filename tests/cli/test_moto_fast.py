"""The local stack's moto (``keep_moto_fast``) answers as moto does, faster: a Query from the
partition it names, without reading the rest of the table, and item actions without walking the
operation's output shape."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto.backends import get_backend
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing.validators import ActionCountValidator
from moto.dynamodb.responses import DynamoHandler

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


def test_a_prefix_query_reads_only_the_items_with_that_prefix(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What moto's Query sorts and filters (by comparisons written in Python) is the items
    of the prefix, not every item of the partition."""
    handed: list[int] = []

    def counted(self: Table) -> list[Item]:
        items = moto_state._all_items(self)
        handed.append(len(items))
        return items

    monkeypatch.setattr(Table, "all_items", counted)
    found = _query(
        table,
        KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
        ExpressionAttributeValues={":p": {"S": "A"}, ":s": {"S": "2#"}},
    )
    assert found == sorted(("A", f"2#{n:03d}") for n in range(30) if n % 3 == 2)
    assert handed == [10]


def test_an_absent_partition_is_empty_and_stays_absent(table: str) -> None:
    values = {":p": {"S": "nobody"}}
    assert _query(table, KeyConditionExpression="pk = :p", ExpressionAttributeValues=values) == []
    stored = get_backend("dynamodb")[moto_state.ACCOUNT][moto_state.REGION].tables[table]
    assert {key.value for key in stored.items} == {"A", "B", "C"}


ITEM = {
    "pk": {"S": "ITEM#1"},
    "sk": {"S": "ITEM"},
    "b1": {"B": b"\x00\xffbytes"},
    "bs1": {"BS": [b"a", b"\x01"]},
    "n1": {"N": "12.50"},
    "ns1": {"NS": ["1", "2"]},
    "ss1": {"SS": ["x", "y"]},
    "m1": {"M": {"deep": {"L": [{"S": "é"}, {"NULL": True}, {"BOOL": False}]}}},
}
KEY: Any = {"pk": ITEM["pk"], "sk": ITEM["sk"]}


def _item_actions(client: Any, table: str) -> list[Any]:
    """Every item action the stores use, and what each answers (request metadata left out)."""
    values = {":p": ITEM["pk"], ":b": {"B": b"new"}}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("put_item", {"Item": ITEM, "ReturnValues": "ALL_OLD"}),
        ("get_item", {"Key": KEY, "ConsistentRead": True}),
        ("batch_get_item", {}),
        ("query", {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": values}),
        (
            "update_item",
            {
                "Key": KEY,
                "UpdateExpression": "SET b1 = :b",
                "ExpressionAttributeValues": {":b": values[":b"]},
                "ReturnValues": "ALL_NEW",
            },
        ),
        ("batch_write_item", {}),
        ("transact_write_items", {}),
        ("delete_item", {"Key": KEY, "ReturnValues": "ALL_OLD"}),
    ]
    answers = []
    for action, arguments in calls:
        if action == "batch_get_item":
            projected = {"Keys": [KEY], "ProjectionExpression": "pk, b1, m1"}
            arguments = {"RequestItems": {table: projected}}
        elif action == "batch_write_item":
            put = {"PutRequest": {"Item": {**ITEM, "sk": {"S": "OTHER"}}}}
            arguments = {"RequestItems": {table: [put]}}
        elif action == "transact_write_items":
            item = {**ITEM, "sk": {"S": "TX"}}
            arguments = {"TransactItems": [{"Put": {"TableName": table, "Item": item}}]}
        else:
            arguments = {"TableName": table, **arguments}
        answer = getattr(client, action)(**arguments)
        answer.pop("ResponseMetadata")
        answers.append(answer)
    for sk in ("OTHER", "TX"):
        client.delete_item(TableName=table, Key={**KEY, "sk": {"S": sk}})
    return answers


@pytest.mark.parametrize(
    ("owner", "name", "original"),
    [
        (DynamoHandler, "serialized", moto_state._original_serialized),
        (DynamoHandler, "parse_parameters", moto_state._original_parse_parameters),
        (Item, "__init__", moto_state._original_item_init),
    ],
    ids=["answers", "requests", "items"],
)
def test_item_actions_answer_what_moto_answers(
    stack: Provisioned, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, original: Any
) -> None:
    moto_state.keep_moto_fast()
    client = boto3.client("dynamodb", region_name="us-east-1")
    fast = _item_actions(client, stack.names.table)
    with monkeypatch.context() as undone:
        undone.setattr(owner, name, original)
        assert _item_actions(client, stack.names.table) == fast


def test_a_request_made_twice_in_one_batch_is_refused_as_moto_refuses_it(
    stack: Provisioned,
) -> None:
    moto_state.keep_moto_fast()
    client: Any = boto3.client("dynamodb", region_name="us-east-1")
    put = {"PutRequest": {"Item": ITEM}}
    other = {"PutRequest": {"Item": {**ITEM, "sk": {"S": "OTHER"}}}}
    with pytest.raises(client.exceptions.ClientError, match="contains duplicates"):
        client.batch_write_item(RequestItems={stack.names.table: [put, other, put]})
    delete = {"DeleteRequest": {"Key": KEY}}
    with pytest.raises(client.exceptions.ClientError, match="contains duplicates"):
        client.batch_write_item(RequestItems={stack.names.table: [delete, delete]})
    client.batch_write_item(RequestItems={stack.names.table: [put, other]})
    assert client.get_item(TableName=stack.names.table, Key=KEY)["Item"] == ITEM


@pytest.mark.parametrize("size", [404_000, 405_002, 405_003, 406_000])
def test_items_past_the_size_limit_are_refused_as_moto_refuses_them(
    stack: Provisioned, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    moto_state.keep_moto_fast()
    client = boto3.client("dynamodb", region_name="us-east-1")

    def outcome(sk: str) -> str:
        # Names and values count: pk, ITEM#1, sk, the sort key, v, then v's value (size - 2).
        item: Any = {**KEY, "sk": {"S": sk}, "v": {"S": "x" * (size - 13 - len(sk))}}
        try:
            client.put_item(TableName=stack.names.table, Item=item)
        except client.exceptions.ClientError as error:
            return str(error.response["Error"])
        return "stored"

    fast = outcome("FAST")
    with monkeypatch.context() as undone:
        undone.setattr(Item, "__init__", moto_state._original_item_init)
        assert outcome("SLOW") == fast
    assert (fast == "stored") == (size - 2 <= moto_state.ITEM_BYTES_LIMIT)


@pytest.mark.parametrize(
    "expression",
    [
        "SET a = :v, b = :v, c = :v REMOVE d ADD n :n",
        "SET a = :v SET b = :v",
        "REMOVE a REMOVE b",
        "ADD n :n SET a = :v ADD m :n",
    ],
)
def test_updates_are_checked_as_moto_checks_them(
    stack: Provisioned, monkeypatch: pytest.MonkeyPatch, expression: str
) -> None:
    moto_state.keep_moto_fast()
    client = boto3.client("dynamodb", region_name="us-east-1")

    def outcome() -> Any:
        values: Any = {":v": {"S": "x"}, ":n": {"N": "1"}}
        client.delete_item(TableName=stack.names.table, Key=KEY)
        try:
            return client.update_item(
                TableName=stack.names.table,
                Key=KEY,
                UpdateExpression=expression,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except client.exceptions.ClientError as error:
            return error.response["Error"]

    fast = outcome()
    with monkeypatch.context() as undone:
        undone.setattr(ActionCountValidator, "traverse", moto_state._original_count_actions)
        assert outcome() == fast
