"""Branch refs: one item per branch, moved only by compare-and-swap.

A client keeps refs as files in directories, so ``a`` and ``a/b`` cannot both be branches, and
that rule is part of the conditional write, not only of a read before it: the ref item of every
directory of a branch counts the branches below it (``below``). Creating a branch puts its ref
only if no ref item is there or the one there counts no branch below, and adds one to the count
of each of its directories only if that directory is no branch, all in one transaction. Of two
pushes creating ``x`` and ``x/y`` at once, one transaction sees the other's item and fails.

An item that is only a directory has no ``commit_id`` and is no branch. A created ref carries
``counted`` (it is in its directories' counts); refs written before the counts existed lack it
and are in no count. The heads read that plans every push still refuses names nested with
those (they were committed before the read, so it sees them); the counts are needed only for
two creations racing, and both of those write them. A ref deletion (no route deletes refs yet)
must delete the ref and, when it carries ``counted``, take one off each directory's count in
the same transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from muse_cloud import aws
from muse_cloud.storage import dynamo, keys

_NOTHING_BELOW = "attribute_not_exists(pk) OR (attribute_not_exists(commit_id) AND below = :zero)"


@dataclass(frozen=True)
class RefUpdate:
    branch: str
    expected: str | None
    new: str
    done: bool = False  # already applied by an earlier run of the same push


def directories(branch: str) -> list[str]:
    """The directories a branch's ref file lives in: ``a/b/c`` lives in ``a`` and ``a/b``."""
    parts = branch.split("/")
    return ["/".join(parts[:end]) for end in range(1, len(parts))]


def _directory_counts(updates: Sequence[RefUpdate]) -> Counter[str]:
    """How many created branches each directory gains."""
    return Counter(d for u in updates if u.expected is None for d in directories(u.branch))


def transaction_size(updates: Sequence[RefUpdate]) -> int:
    """The actions moving ``updates`` at once takes: one per ref, one per directory gaining a
    branch (a DynamoDB transaction holds at most ``dynamo.TRANSACTION_MAX``)."""
    return len(updates) + len(_directory_counts(updates))


class RefStore:
    def heads(self, repo_id: str) -> dict[str, str]:
        items = dynamo.query_prefix(keys.repo_partition(repo_id), keys.REF_PREFIX)
        return {
            i["sk"].removeprefix(keys.REF_PREFIX): i["commit_id"] for i in items if "commit_id" in i
        }

    def get(self, repo_id: str, branch: str) -> str | None:
        item = dynamo.get_item(keys.ref(repo_id, branch))
        return item.get("commit_id") if item else None

    def compare_and_swap(self, repo_id: str, updates: list[RefUpdate], push_id: str) -> bool:
        """Move every ref in ``updates`` at once, each only if it still points where expected,
        and create each new one only if no branch is its directory or lives in it.

        One transaction (``transaction_size`` actions, at most 100), so a push that moves
        several branches moves all of them or none; False when a condition failed: another push
        moved a ref first, or created a branch nested with a new one.
        """
        now = datetime.now(UTC).isoformat()
        actions: list[Any] = [_ref_write(repo_id, u, push_id, now) for u in updates]
        for directory, created in sorted(_directory_counts(updates).items()):
            actions.append(
                {
                    "Update": {
                        "TableName": dynamo.table(),
                        "Key": dynamo.to_wire(keys.ref(repo_id, directory)),
                        "UpdateExpression": "ADD below :created",
                        "ConditionExpression": "attribute_not_exists(commit_id)",
                        "ExpressionAttributeValues": {":created": {"N": str(created)}},
                    }
                }
            )
        try:
            if len(actions) > 1:
                aws.dynamodb().transact_write_items(TransactItems=actions)
            elif "Put" in actions[0]:
                # One top-level branch, or one move, needs no transaction (which costs double).
                aws.dynamodb().put_item(**actions[0]["Put"])
            else:
                aws.dynamodb().update_item(**actions[0]["Update"])
        except ClientError as error:
            if dynamo.is_conditional_failure(error):
                return False
            raise
        return True


def _ref_write(repo_id: str, update: RefUpdate, push_id: str, now: str) -> dict[str, Any]:
    if update.expected is None:
        item = {
            **keys.ref(repo_id, update.branch),
            "commit_id": update.new,
            "updated_at": now,
            "push_id": push_id,
            "counted": True,
        }
        return {
            "Put": {
                "TableName": dynamo.table(),
                "Item": dynamo.to_wire(item),
                "ConditionExpression": _NOTHING_BELOW,
                "ExpressionAttributeValues": {":zero": {"N": "0"}},
            }
        }
    # An update, not a put: a move keeps whatever else the item holds (``counted``).
    return {
        "Update": {
            "TableName": dynamo.table(),
            "Key": dynamo.to_wire(keys.ref(repo_id, update.branch)),
            "UpdateExpression": "SET commit_id = :new, updated_at = :now, push_id = :push",
            "ConditionExpression": "commit_id = :expected",
            "ExpressionAttributeValues": {
                ":new": {"S": update.new},
                ":now": {"S": now},
                ":push": {"S": push_id},
                ":expected": {"S": update.expected},
            },
        }
    }
