"""The CLI's clone against the API handler: what it writes when branches move under it, and
branch names that nest under the default branch's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from histories import History, linear_history

from muse_cloud_cli.client import MuseCloudClient, Remote
from muse_cloud_cli.clone import clone_repo
from muse_cloud_cli.errors import CliError
from muse_cloud_dev.provision import Provisioned
from muse_core.mpack import encode_mpack, mpack_key
from muse_core.refs import list_branches, read_head

from .client import call
from .test_endpoints import create_repo, fetched_pack, identity, push


@dataclass
class ApiClient:
    """The three calls clone makes, answered by the API handler in this process."""

    stack: Provisioned
    repo_id: str
    before_fetch: Callable[[], None] = lambda: None
    fetched: list[dict[str, Any]] = field(default_factory=list)

    def refs(self, owner: str, name: str) -> dict[str, Any]:
        answer = call("GET", f"/{owner}/{name}/refs")
        assert answer.status == 200, answer.body
        refs: dict[str, Any] = answer.json()
        return refs

    def fetch(self, owner: str, name: str, want: list[str], have: list[str]) -> dict[str, Any]:
        self.before_fetch()
        answer = call("POST", f"/{owner}/{name}/fetch/mpack", {"want": want, "have": have})
        assert answer.status == 200, answer.body
        self.fetched.append(answer.json())
        return self.fetched[-1]

    def download(self, url: str, progress: bool = False) -> bytes:
        return fetched_pack(self.stack, self.repo_id, self.fetched[-1])


def clone(client: ApiClient, dest: Path, slug: str = "olivia/songs") -> dict[str, str]:
    remote = Remote.parse(f"http://server.invalid/{slug}")
    result = clone_repo(cast(MuseCloudClient, client), remote, dest)
    assert list_branches(dest) == result.branch_heads
    return result.branch_heads


def files_of(history: History, commit_id: str) -> dict[str, bytes]:
    manifest = history.snapshots[history.records[commit_id].snapshot_id]
    return {path: history.blobs[oid] for path, oid in manifest.items()}


def checked_out(dest: Path) -> dict[str, bytes]:
    return {
        p.relative_to(dest).as_posix(): p.read_bytes()
        for p in dest.rglob("*")
        if p.is_file() and ".muse" not in p.relative_to(dest).parts
    }


def test_a_branch_moving_during_the_clone_is_cloned_where_the_fetch_found_it(
    stack: Provisioned, tmp_path: Path
) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    history = linear_history(2)
    assert push(stack, owner, repo, encode_mpack(history.pack())).status == 200
    old = history.head
    new = history.add({"tracks/late.mid": b"pushed while cloning"})

    def someone_pushes() -> None:
        data = encode_mpack(history.pack(have=[old]))
        assert push(stack, owner, repo, data).status == 200

    client = ApiClient(stack, repo["repoId"], before_fetch=someone_pushes)

    assert clone(client, tmp_path / "copy") == {"main": new}
    assert read_head(tmp_path / "copy") == ("ref", "main")
    assert checked_out(tmp_path / "copy") == files_of(history, new)


def test_a_branch_nested_under_main_is_cloned(stack: Provisioned, tmp_path: Path) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    history = linear_history(2)
    c0, c1 = history.order
    data = encode_mpack(history.pack({"main/x": c1, "main/y/z": c0}))
    assert push(stack, owner, repo, data, branch=None).status == 200

    heads = clone(ApiClient(stack, repo["repoId"]), tmp_path / "copy")

    assert heads == {"main/x": c1, "main/y/z": c0}
    # The default branch had no commits: the first branch pushed became the default.
    assert read_head(tmp_path / "copy") == ("ref", "main/x")
    assert checked_out(tmp_path / "copy") == files_of(history, c1)


def test_main_alongside_other_branches(stack: Provisioned, tmp_path: Path) -> None:
    owner = identity("olivia")
    repo = create_repo(owner, "songs")
    history = linear_history(2)
    c0, c1 = history.order
    data = encode_mpack(history.pack({"main": c1, "dev": c0}))
    assert push(stack, owner, repo, data, branch=None).status == 200
    assert clone(ApiClient(stack, repo["repoId"]), tmp_path / "copy") == {"main": c1, "dev": c0}
    assert checked_out(tmp_path / "copy") == files_of(history, c1)


def test_an_empty_repository_clones_like_a_fresh_init(stack: Provisioned, tmp_path: Path) -> None:
    repo = create_repo(identity("olivia"), "songs")
    client = ApiClient(stack, repo["repoId"])
    assert clone(client, tmp_path / "copy") == {}
    assert client.fetched == []
    assert (tmp_path / "copy" / ".muse" / "refs" / "heads" / "main").read_text() == ""


@dataclass
class PackServer:
    """Serves one pack as a server holding exactly its branches would."""

    data: bytes
    heads: dict[str, str]

    def refs(self, owner: str, name: str) -> dict[str, Any]:
        return {"repo_id": None, "default_branch": "main", "branch_heads": self.heads}

    def fetch(self, owner: str, name: str, want: list[str], have: list[str]) -> dict[str, Any]:
        return {"download_url": "http://server.invalid/pack", "mpack_key": mpack_key(self.data)}

    def download(self, url: str, progress: bool = False) -> bytes:
        return self.data


def test_branches_whose_refs_cannot_both_be_files(tmp_path: Path) -> None:
    history = linear_history(1)
    heads = {"a": history.head, "a/b": history.head}
    server = PackServer(encode_mpack(history.pack(heads)), heads)
    remote = Remote.parse("http://server.invalid/olivia/songs")
    with pytest.raises(CliError) as refused:
        clone_repo(cast(MuseCloudClient, server), remote, tmp_path / "copy")
    assert refused.value.code == "invalid_branch_name"
    assert not (tmp_path / "copy").exists()


def test_a_repository_with_more_branches_than_one_push_may_carry_clones(tmp_path: Path) -> None:
    """Pushes move at most 100 branches each; a clone carries all of them at once."""
    history = linear_history(3)
    heads = {f"topic-{n:03d}": history.order[n % 3] for n in range(150)} | {"main": history.head}
    server = PackServer(encode_mpack(history.pack(heads)), heads)
    remote = Remote.parse("http://server.invalid/olivia/songs")

    clone_repo(cast(MuseCloudClient, server), remote, tmp_path / "copy")

    assert list_branches(tmp_path / "copy") == heads
