"""Races over real HTTP on the local stack: each client a thread of its own, each request served
by one of the stack's API workers (processes, as Lambda sandboxes), the unpack workers fed by
the queue at the same time, and moto's server between them.

Every race must end with one winner where one is possible, coded refusals for the others
(never a 5xx), and refs that point at whole history.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
from histories import History, linear_history

from muse_cloud_cli.client import ClientError, MuseCloudClient
from muse_cloud_cli.signer import KeyFile
from muse_cloud_dev.local_stack import LocalStack
from muse_core.mpack import encode_mpack, mpack_key

from .profile import examples

LOSING = {"non_fast_forward", "ref_conflict", "branch_name_conflict", "push_in_progress"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("races")) as running:
        yield running


def _client(stack: LocalStack) -> MuseCloudClient:
    return MuseCloudClient(stack.api_url, KeyFile.load(stack.admin_key_path))


def _push(
    stack: LocalStack, name: str, pack: dict[str, Any], branch: str, head: str
) -> dict[str, Any]:
    """What `muse-cloud push` does over HTTP: presign, PUT, unpack; a refusal as its code."""
    data = encode_mpack(pack)
    key = mpack_key(data)
    with _client(stack) as client:
        try:
            grant = client.presign("admin", name, key, len(data), branch=branch, head=head)
            client.upload(grant["upload_url"], grant["headers"], data)
            return client.unpack("admin", name, key, branch, head)
        except ClientError as error:
            assert error.status < 500, (error.status, error.code, error.message)
            return {"refused": error.code, "status": error.status}


def _at_once(calls: list[Callable[[], dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every call started together: each thread waits for the others before its first request."""
    barrier = threading.Barrier(len(calls), timeout=120)

    def run(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _delete(stack: LocalStack, repo_id: str) -> dict[str, Any]:
    with _client(stack) as client:
        try:
            client.delete_repo(repo_id)
        except ClientError as error:
            assert error.status < 500, (error.status, error.code)
            return {"refused": error.code}
    return {"deleted": True}


def _assert_whole(stack: LocalStack, name: str) -> dict[str, str]:
    """Every head names a commit whose snapshot rebuilds and whose objects are readable."""
    with _client(stack) as client:
        heads: dict[str, str] = client.refs("admin", name)["branch_heads"]
        for head in heads.values():
            commit = client.commit("admin", name, head)
            manifest = client.snapshot("admin", name, commit["snapshot_id"])["manifest"]
            for object_id in manifest.values():
                client.object("admin", name, object_id)
    return heads


def test_many_pushes_to_one_branch_have_one_winner(stack: LocalStack) -> None:
    for round_ in range(examples(2)):
        name = f"one-branch-{round_}"
        with _client(stack) as client:
            client.create_repo("admin", name)
        base = linear_history(commits=2, tag=f"r{round_}")
        assert "refused" not in _push(stack, name, base.pack(), "main", base.head)
        rivals: list[tuple[dict[str, Any], str]] = []
        for n in range(4):
            child = History(base.tag, dict(base.records), dict(base.snapshots), dict(base.blobs))
            child.order = list(base.order)
            head = child.add({f"tracks/rival-{n}.mid": f"rival {n}".encode()})
            rivals.append((child.pack({"main": head}, have=base.order), head))
        answers = _at_once([partial(_push, stack, name, pack, "main", h) for pack, h in rivals])
        winners = [a for a in answers if "refused" not in a]
        assert len(winners) == 1, answers
        assert all(a["refused"] in LOSING for a in answers if "refused" in a), answers
        assert _assert_whole(stack, name) == {"main": winners[0]["head"]}


def test_nested_branch_names_created_at_once_have_one_winner(stack: LocalStack) -> None:
    for round_ in range(examples(3)):
        name = f"nested-{round_}"
        with _client(stack) as client:
            client.create_repo("admin", name)
        history = linear_history(commits=1, tag=f"n{round_}")
        pack = history.pack({"x": history.head})
        nested = history.pack({"x/y": history.head})
        answers = _at_once(
            [
                partial(_push, stack, name, pack, "x", history.head),
                partial(_push, stack, name, nested, "x/y", history.head),
            ]
        )
        winners = [a for a in answers if "refused" not in a]
        assert len(winners) == 1, answers
        heads = _assert_whole(stack, name)
        assert set(heads) in ({"x"}, {"x/y"}), heads


def test_a_repository_deleted_while_a_push_is_in_flight(stack: LocalStack) -> None:
    """Deletion racing an ingestion: whichever lands first, the repository ends gone for every
    reader, and a repository made again under its name starts empty."""
    for round_ in range(examples(2)):
        name = f"doomed-{round_}"
        with _client(stack) as client:
            repo_id = client.create_repo("admin", name)["repoId"]
        history = linear_history(commits=3, tag=f"d{round_}")

        push = partial(_push, stack, name, history.pack(), "main", history.head)
        answers = _at_once([push, partial(_delete, stack, repo_id)])
        assert answers[1] == {"deleted": True}, answers
        pushed = answers[0]
        assert "refused" not in pushed or pushed["status"] in (404, 409), pushed
        with _client(stack) as client:
            with pytest.raises(ClientError) as gone:
                client.refs("admin", name)
            assert (gone.value.status, gone.value.code) == (404, "not_found")
            client.create_repo("admin", name)
            assert client.refs("admin", name)["branch_heads"] == {}
            with pytest.raises(ClientError) as unseen:
                client.commit("admin", name, history.head)
            assert unseen.value.status == 404
