"""Shared fixtures: a moto AWS stack provisioned from template.yaml."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from muse_cloud import aws
from muse_cloud.config import settings
from muse_cloud.services.unpack import ingest_once
from muse_cloud_cli.provision import Provisioned, StackNames, provision

REGION = "us-east-1"


def _forget_cached_clients() -> None:
    settings.cache_clear()
    aws.reset_clients()
    ingest_once.cache_clear()


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Provisioned]:
    """A fresh moto S3 + SQS + DynamoDB stack, with the server's environment pointing at it."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    names = StackNames.with_prefix("test")
    for key, value in names.environment().items():
        monkeypatch.setenv(key, value)
    _forget_cached_clients()
    with mock_aws():
        yield provision(boto3.Session(region_name=REGION), names)
    _forget_cached_clients()
