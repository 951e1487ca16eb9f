"""The server as the fixtures' stack composes it (``composition.cold_start``): its services, its
stores, and the boto3 clients they were built with (a hook on these sees every request)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from muse_cloud.api.statuses import http_status
from muse_cloud.composition import Services, cold_start
from muse_cloud.config import Settings
from muse_cloud.storage.dynamo import DynamoTable
from muse_cloud.storage.s3 import S3Bucket
from muse_cloud.storage.stores import Stores

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

__all__ = ["dynamodb", "http_status", "s3", "services", "settings", "stores"]


def services() -> Services:
    return cold_start.get()


def stores() -> Stores:
    return services().stores


def settings() -> Settings:
    return services().settings


def dynamodb() -> DynamoDBClient:
    table = stores().table
    assert isinstance(table, DynamoTable)
    return table.client


def s3() -> S3Client:
    bucket = stores().bucket
    assert isinstance(bucket, S3Bucket)
    return bucket.client
