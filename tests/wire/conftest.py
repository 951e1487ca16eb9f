"""The local stack over real HTTP, identities registered by its admin, and client histories."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import histories
import pytest

from muse_cloud_cli.client import MuseCloudClient
from muse_cloud_cli.signer import KeyFile, new_identity
from muse_cloud_cli.tokens import create_token
from muse_cloud_cli.wire_v0_client import WireClient
from muse_cloud_dev.local_stack import LocalStack
from muse_core.refs import write_branch_ref
from muse_core.repo import init_repo


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("stack")) as running:
        yield running


def person(stack: LocalStack, prefix: str) -> KeyFile:
    """A new identity, registered by the stack's admin (handles are unique per stack)."""
    key = new_identity(f"{prefix}-{secrets.token_hex(3)}")
    assert stack.admin is not None
    with MuseCloudClient(stack.api_url, stack.admin) as admin:
        admin.create_identity(key.handle, key.public_key)
    return key


def new_repo(stack: LocalStack, owner: KeyFile, name: str, visibility: str = "public") -> str:
    """Creates the repository; its remote URL as the Muse client takes it."""
    with MuseCloudClient(stack.api_url, owner) as client:
        repo = client.create_repo(owner.handle, name, visibility)
    assert repo["slug"] == name
    return f"{stack.api_url}/{owner.handle}/{repo['slug']}"


def token(stack: LocalStack, owner: KeyFile, scope: str = "write") -> str:
    with MuseCloudClient(stack.api_url, owner) as client:
        secret: str = create_token(client, f"{scope} token", scope, None)["token"]
    return secret


def wire(stack: LocalStack, owner: KeyFile, name: str, scope: str = "write") -> WireClient:
    return WireClient(new_repo(stack, owner, name), token(stack, owner, scope))


def commit(
    root: Path,
    files: dict[str, bytes],
    message: str,
    parents: tuple[str, ...] = (),
    minute: int = 0,
    branch: str = "main",
) -> str:
    """A commit carrying fields the wire must keep: metadata and one it does not know."""
    return histories.commit(
        root,
        files,
        message,
        parents,
        minute,
        branch=branch,
        metadata={"tempo": "120"},
        future_field={"kept": [1, "two", None]},
    )


BASE = {"a.txt": b"hi", "dir/b.txt": b"yo", "empty.txt": b"", "chansons/été ♪.mid": b"\x90<\x7f"}


def history(root: Path) -> dict[str, str]:
    """main: a root, a child and a merge of a side branch; plus the nested branch feature/x/y.
    An empty file and a unicode path throughout. Returns the commits by name."""
    init_repo(root)
    first = commit(root, BASE, "init", (), 0)
    grown = {**BASE, "a.txt": b"hi again", "deep/c.mid": bytes(256)}
    second = commit(root, grown, "two", (first,), 1)
    side = commit(root, {**BASE, "x.txt": b"side"}, "side", (first,), 2, branch="feature/x/y")
    merged = commit(
        root,
        {**grown, "x.txt": b"side"},
        "merge feature/x/y",
        (second, side),
        3,
    )
    write_branch_ref(root, "main", merged)
    write_branch_ref(root, "feature/x/y", side)
    return {"first": first, "second": second, "side": side, "merge": merged}
