"""Create the stack's storage resources on any S3/SQS/DynamoDB endpoint (moto, locally) from
the definitions in template.yaml, so the local stack and the cloud cannot drift apart."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


class _TemplateLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, ...) as plain values."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node)}
    assert isinstance(node, yaml.MappingNode)
    return {suffix: loader.construct_mapping(node)}


_TemplateLoader.add_multi_constructor("!", _any_tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        template: dict[str, Any] = yaml.load(handle, Loader=_TemplateLoader)
    return template


@dataclass(frozen=True)
class StackNames:
    table: str
    bucket: str
    queue: str
    dead_letter_queue: str
    event_bus: str

    @classmethod
    def with_prefix(cls, prefix: str) -> StackNames:
        return cls(
            table=f"{prefix}-table",
            bucket=f"{prefix}-packs",
            queue=f"{prefix}-ingest",
            dead_letter_queue=f"{prefix}-ingest-dlq",
            event_bus=f"{prefix}-pushes",
        )

    def environment(self) -> dict[str, str]:
        return {
            "MUSE_TABLE_NAME": self.table,
            "MUSE_BUCKET_NAME": self.bucket,
            "MUSE_EVENT_BUS_NAME": self.event_bus,
        }


@dataclass(frozen=True)
class Provisioned:
    names: StackNames
    queue_url: str
    dead_letter_queue_url: str
    batch_size: int
    visibility_timeout: int
    max_receive_count: int
    # The unpack function's SQS mapping lists ReportBatchItemFailures in FunctionResponseTypes.
    report_batch_item_failures: bool


def provision(
    session: Any, names: StackNames, template: dict[str, Any] | None = None
) -> Provisioned:
    """Create tables, queues and the bucket with its notification, as template.yaml defines them."""
    resources = (template or load_template())["Resources"]
    dynamodb = session.client("dynamodb")
    table = resources["MuseTable"]["Properties"]
    dynamodb.create_table(
        TableName=names.table,
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
        BillingMode=table["BillingMode"],
    )
    ttl = table["TimeToLiveSpecification"]
    dynamodb.update_time_to_live(
        TableName=names.table,
        TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
    )

    sqs = session.client("sqs")
    dlq_props = resources["IngestDeadLetterQueue"]["Properties"]
    dlq_url = sqs.create_queue(
        QueueName=names.dead_letter_queue,
        Attributes={"MessageRetentionPeriod": str(dlq_props["MessageRetentionPeriod"])},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_props = resources["IngestQueue"]["Properties"]
    max_receive = int(queue_props["RedrivePolicy"]["maxReceiveCount"])
    visibility = int(queue_props["VisibilityTimeout"])
    queue_url = sqs.create_queue(
        QueueName=names.queue,
        Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}
            ),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]

    s3 = session.client("s3")
    s3.create_bucket(Bucket=names.bucket)
    bucket_props = resources["PackBucket"]["Properties"]
    queue_configs = []
    for config in bucket_props["NotificationConfiguration"]["QueueConfigurations"]:
        rules = config["Filter"]["S3Key"]["Rules"]
        queue_configs.append(
            {
                "QueueArn": queue_arn,
                "Events": [config["Event"]],
                "Filter": {
                    "Key": {
                        "FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]
                    }
                },
            }
        )
    s3.put_bucket_notification_configuration(
        Bucket=names.bucket,
        NotificationConfiguration={"QueueConfigurations": queue_configs},
    )
    # template.yaml's PushEventBus: a bus with a name and nothing else.
    _create_event_bus(session.client("events"), names.event_bus)
    sqs_event = resources["UnpackFunction"]["Properties"]["Events"]["IngestQueueEvent"]
    response_types = sqs_event["Properties"].get("FunctionResponseTypes") or []
    return Provisioned(
        names=names,
        queue_url=queue_url,
        dead_letter_queue_url=dlq_url,
        batch_size=int(sqs_event["Properties"]["BatchSize"]),
        visibility_timeout=visibility,
        max_receive_count=max_receive,
        report_batch_item_failures="ReportBatchItemFailures" in response_types,
    )


def _create_event_bus(events: Any, name: str) -> None:
    """The push event bus; one a stack of this name made earlier in this process (buses are not
    saved with the stack's state) is taken as it is."""
    try:
        events.create_event_bus(Name=name)
    except events.exceptions.ResourceAlreadyExistsException:
        return
