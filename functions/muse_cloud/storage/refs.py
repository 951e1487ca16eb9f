"""Branch refs: one item per branch, moved only by compare-and-swap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from muse_cloud import aws
from muse_cloud.storage import dynamo, keys


@dataclass(frozen=True)
class RefUpdate:
    branch: str
    expected: str | None
    new: str
    done: bool = False  # already applied by an earlier run of the same push


class RefStore:
    def heads(self, repo_id: str) -> dict[str, str]:
        items = dynamo.query_prefix(keys.repo_partition(repo_id), keys.REF_PREFIX)
        return {i["sk"].removeprefix(keys.REF_PREFIX): i["commit_id"] for i in items}

    def get(self, repo_id: str, branch: str) -> str | None:
        item = dynamo.get_item(keys.ref(repo_id, branch))
        return item["commit_id"] if item else None

    def compare_and_swap(self, repo_id: str, updates: list[RefUpdate], push_id: str) -> bool:
        """Move every ref in ``updates`` at once, each only if it still points where expected.

        One transaction (at most 100 refs), so a push that moves several branches moves all of
        them or none; False when any ref was moved by someone else first.
        """
        now = datetime.now(UTC).isoformat()
        actions: list[Any] = []
        for update in updates:
            item = {
                **keys.ref(repo_id, update.branch),
                "commit_id": update.new,
                "updated_at": now,
                "push_id": push_id,
            }
            action: dict[str, Any] = {"TableName": dynamo.table(), "Item": dynamo.to_wire(item)}
            if update.expected is None:
                action["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                action["ConditionExpression"] = "commit_id = :expected"
                action["ExpressionAttributeValues"] = {":expected": {"S": update.expected}}
            actions.append({"Put": action})
        try:
            if len(actions) == 1:
                # One branch needs no transaction (and a plain conditional put costs half).
                aws.dynamodb().put_item(**actions[0]["Put"])
            else:
                aws.dynamodb().transact_write_items(TransactItems=actions)
        except ClientError as error:
            if dynamo.is_conditional_failure(error):
                return False
            raise
        return True
