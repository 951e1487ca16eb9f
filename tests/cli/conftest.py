"""One local stack per test module, and the arguments that sign as its admin."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from muse_cloud_cli.client import MuseCloudClient
from muse_cloud_dev.local_stack import LocalStack


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture
def admin(local_stack: LocalStack) -> list[str]:
    return ["--identity", str(local_stack.admin_key_path)]


@pytest.fixture
def unpacking(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once a client sends its unpack-mpack request: the server starts ingesting."""
    called = threading.Event()
    original = MuseCloudClient.unpack

    def signalled(self: MuseCloudClient, *args: Any, **kwargs: Any) -> dict[str, Any]:
        called.set()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MuseCloudClient, "unpack", signalled)
    return called
