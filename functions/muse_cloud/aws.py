"""boto3 clients, created once per process (Lambda reuses them across invocations).

Endpoints come from boto3's own ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` variables,
which is how the local stack points the same code at moto.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

_CONFIG = Config(
    signature_version="s3v4",
    retries={"max_attempts": 5, "mode": "standard"},
    max_pool_connections=32,
)


@lru_cache(maxsize=1)
def dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb", config=_CONFIG)


@lru_cache(maxsize=1)
def s3() -> S3Client:
    return boto3.client("s3", config=_CONFIG)


@lru_cache(maxsize=1)
def sqs() -> SQSClient:
    return boto3.client("sqs", config=_CONFIG)


def reset_clients() -> None:
    """Forget cached clients (tests and the local stack switch endpoints between runs)."""
    for factory in (dynamodb, s3, sqs):
        factory.cache_clear()
