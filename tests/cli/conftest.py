"""One local stack per test module, and the arguments that sign as its admin."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from muse_cloud_cli.client import MuseCloudClient, Remote
from muse_cloud_cli.signer import KeyFile, new_identity
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


def registered(local_stack: LocalStack, handle: str, directory: Path) -> tuple[KeyFile, Path]:
    """A new identity the stack's admin registered (no admin itself), and its key file."""
    key = new_identity(handle)
    path = directory / f"{handle}.json"
    key.save(path)
    assert local_stack.admin is not None
    with MuseCloudClient(local_stack.api_url, local_stack.admin) as client:
        client.create_identity(key.handle, key.public_key)
    return key, path


def new_remote(stack: LocalStack, client: MuseCloudClient, name: str) -> Remote:
    """A new repository ``admin/<name>`` on ``stack``, created by ``client`` (its admin)."""
    client.create_repo("admin", name)
    return Remote.parse(f"{stack.api_url}/admin/{name}")
