"""Tags and releases of a repository, in its own partition (gone with it).

| item    | pk              | sk                |
|---------|-----------------|-------------------|
| tag     | REPO#<repo_id>  | TAG#<tag_id>      |
| release | REPO#<repo_id>  | RELEASE#<tag>     |

Each keeps the record the client sent, as JSON, every field included.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from muse_cloud import aws
from muse_cloud.storage import dynamo, keys

TAG_PREFIX = "TAG#"
RELEASE_PREFIX = "RELEASE#"


def tag_key(repo_id: str, tag_id: str) -> keys.Key:
    return {"pk": keys.repo_partition(repo_id), "sk": f"{TAG_PREFIX}{tag_id}"}


def release_key(repo_id: str, tag: str) -> keys.Key:
    return {"pk": keys.repo_partition(repo_id), "sk": f"{RELEASE_PREFIX}{tag}"}


def _put_new(item: dict[str, Any]) -> bool:
    """Write the item unless one is there already; whether this call wrote it."""
    try:
        aws.dynamodb().put_item(
            TableName=dynamo.table(),
            Item=dynamo.to_wire(item),
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as error:
        if dynamo.is_conditional_failure(error):
            return False
        raise
    return True


class ReleaseStore:
    def add_tag(self, repo_id: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """None when stored now; the record held under that tag id when there is one."""
        item = {**tag_key(repo_id, record["tag_id"]), "record": json.dumps(record)}
        if _put_new(item):
            return None
        held = dynamo.get_item(tag_key(repo_id, record["tag_id"]))
        return json.loads(held["record"]) if held else None

    def tags(self, repo_id: str) -> list[dict[str, Any]]:
        items = dynamo.query_prefix(keys.repo_partition(repo_id), TAG_PREFIX)
        return [json.loads(i["record"]) for i in items]

    def add_release(self, repo_id: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """None when stored now; the release held under that tag when there is one."""
        item = {**release_key(repo_id, record["tag"]), "record": json.dumps(record)}
        if _put_new(item):
            return None
        return self.release(repo_id, record["tag"])

    def release(self, repo_id: str, tag: str) -> dict[str, Any] | None:
        held = dynamo.get_item(release_key(repo_id, tag))
        return json.loads(held["record"]) if held else None

    def releases(self, repo_id: str) -> list[dict[str, Any]]:
        items = dynamo.query_prefix(keys.repo_partition(repo_id), RELEASE_PREFIX)
        return [json.loads(i["record"]) for i in items]

    def retract(self, repo_id: str, tag: str) -> bool:
        """Remove the release of ``tag``; whether there was one."""
        answer = aws.dynamodb().delete_item(
            TableName=dynamo.table(),
            Key=dynamo.to_wire(release_key(repo_id, tag)),
            ReturnValues="ALL_OLD",
        )
        return bool(answer.get("Attributes"))
