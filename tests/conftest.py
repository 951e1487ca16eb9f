"""Shared fixtures: a moto AWS stack provisioned from template.yaml."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
import requests
from moto import mock_aws

from muse_cloud_dev.provision import Provisioned, StackNames, provision
from muse_cloud_dev.server import forget_cached_clients

REGION = "us-east-1"


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
    forget_cached_clients()
    with mock_aws():
        yield provision(boto3.Session(region_name=REGION), names)
    forget_cached_clients()


@pytest.fixture
def server_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Provisioned]:
    """The same stack behind a real moto server on loopback, for clients that speak HTTP."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # The server shares moto's in-process state: start every test from an empty account.
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    names = StackNames.with_prefix("http")
    for key, value in names.environment().items():
        monkeypatch.setenv(key, value)
    forget_cached_clients()
    try:
        yield provision(boto3.Session(region_name=REGION), names)
    finally:
        server.stop()
        forget_cached_clients()
