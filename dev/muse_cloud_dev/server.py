"""Every name the dev stack (and the tests' fixtures) takes from the server package, in one place:
when the server's modules move or are renamed, this file follows and nothing else does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from muse_cloud.api.answers import PushAnswer
from muse_cloud.composition import Services, cold_start
from muse_cloud.config import Settings
from muse_cloud.domain.pushes import PushRecord
from muse_cloud.storage.dynamo import DynamoTable
from muse_cloud.storage.s3 import S3Bucket
from muse_cloud.storage.stores import Stores

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

# ``module:function`` of each Lambda handler, as template.yaml's Handler names them; imported by
# the stack's worker processes, never by the stack's own.
API_HANDLER = "muse_cloud.handlers.api:lambda_handler"
UNPACK_HANDLER = "muse_cloud.handlers.unpack:lambda_handler"
EVENTS_HANDLER = "muse_cloud.handlers.events:lambda_handler"


def forget_cached_clients() -> None:
    """Drop what the server built at its cold start (clients, stores, services), so the next
    call reads the environment again: the stack and the tests switch endpoints and resource
    names between runs."""
    cold_start.reset()


def ensure_bootstrap_admin(public_key: str) -> None:
    """Register the bootstrap admin (handle ``admin``) under this base64url Ed25519 key, as the
    API function does on first use; a second call with the same key changes nothing."""
    services().identities.ensure_bootstrap_admin(public_key)


def services() -> Services:
    """The server's services as this process composed them from the environment."""
    return cold_start.get()


def stores() -> Stores:
    return services().stores


def settings() -> Settings:
    return services().settings


def dynamodb() -> DynamoDBClient:
    """The server's own DynamoDB client: a hook on it sees every request the server makes."""
    table = stores().table
    assert isinstance(table, DynamoTable)
    return table.client


def s3() -> S3Client:
    """The server's own S3 client."""
    bucket = stores().bucket
    assert isinstance(bucket, S3Bucket)
    return bucket.client


def answered(record: PushRecord) -> dict[str, Any]:
    """A push record as the API answers it (``GET .../push/{push_id}``): the ingestion's
    result at the top level, the refusal under ``error`` with its ``http_status``."""
    answer: dict[str, Any] = PushAnswer.of(record).model_dump()
    return answer


def api_logger_name() -> str:
    """The name of the API function's logger (importing the handler creates it)."""
    from muse_cloud.telemetry import logger

    return logger.name
