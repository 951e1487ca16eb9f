"""The local stack's periodic save: a forked child writes the state as it was at the fork, while
the stack goes on serving requests."""

from __future__ import annotations

import os
from pathlib import Path

import boto3

from muse_cloud_dev.moto_state import (
    RequestGate,
    SavedResources,
    restore_state,
    save_state_aside,
    saved_prefix,
)
from muse_cloud_dev.provision import Provisioned


def _put(table: str, name: str) -> None:
    item = {"pk": {"S": f"SAVED#{name}"}, "sk": {"S": "SAVED"}}
    boto3.client("dynamodb", region_name="us-east-1").put_item(TableName=table, Item=item)


def _held(table: str) -> set[str]:
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=table)["Items"]
    return {i["pk"]["S"] for i in items if i["pk"]["S"].startswith("SAVED#")}


def test_a_save_aside_holds_the_state_of_its_fork(stack: Provisioned, tmp_path: Path) -> None:
    table, path = stack.names.table, tmp_path / "state.pickle"
    resources = SavedResources(tables=(table,), bucket=stack.names.bucket)
    _put(table, "before")
    pid = save_state_aside(path, resources, "prefix", RequestGate())
    assert pid > 0
    # Served while the child writes, and not part of what it writes.
    _put(table, "after")
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert saved_prefix(path) == "prefix"
    assert _held(table) == {"SAVED#before", "SAVED#after"}
    restore_state(path, resources)
    assert _held(table) == {"SAVED#before"}
