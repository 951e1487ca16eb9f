"""The CLI against the local stack over real HTTP: push, clone, refs, log, repos, identities."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from histories import commit

from muse_cloud_cli.client import ClientError, MuseCloudClient, Remote
from muse_cloud_cli.main import build_parser, main
from muse_cloud_cli.push import prepare_push, send_push
from muse_cloud_cli.signer import new_identity
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.local_stack import LocalStack, http_api_event, http_api_response
from muse_core.commits import read_commit
from muse_core.ids import blob_id
from muse_core.mpack import build_mpack, encode_mpack, mpack_key
from muse_core.refs import list_branches, write_branch_ref
from muse_core.repo import init_repo
from muse_core.snapshots import read_snapshot


def make_repo(root: Path) -> None:
    """Two branches with a merge, nested paths, an empty file and fields no server knows."""
    init_repo(root)
    base = {"a.txt": b"hi", "dir/b.txt": b"yo", "empty.txt": b""}
    first = commit(root, base, "init", (), 0)
    second = commit(
        root,
        {"a.txt": b"hi again", "empty.txt": b"", "deep/nested/c.mid": bytes(range(256))},
        "second",
        (first,),
        1,
        metadata={"tempo": "120"},
        future_field={"nested": [1, "two", None]},
    )
    side = commit(root, {**base, "x.txt": b"side"}, "side branch", (first,), 2, branch="feature/x")
    merged = commit(
        root,
        {
            "a.txt": b"hi again",
            "empty.txt": b"",
            "deep/nested/c.mid": bytes(range(256)),
            "x.txt": b"side",
        },
        "merge feature/x",
        (second, side),
        3,
    )
    write_branch_ref(root, "main", merged)
    write_branch_ref(root, "feature/x", side)


def muse_files(root: Path) -> dict[str, object]:
    """Every file the format names, as content to compare (snapshots without created_at)."""
    base = root / ".muse"
    found: dict[str, object] = {}
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        name = path.relative_to(base).as_posix()
        if name.startswith("objects/"):
            found[name] = path.read_bytes()
        elif name.startswith("commits/"):
            found[name] = json.loads(path.read_text())
        elif name.startswith("snapshots/"):
            found[name] = json.loads(path.read_text())["manifest"]
        elif name.startswith("refs/heads/"):
            found[name] = path.read_text().strip()
    return found


def test_push_and_clone_round_trip_every_file(
    local_stack: LocalStack, admin: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, copy = tmp_path / "source", tmp_path / "copy"
    make_repo(source)
    remote = f"{local_stack.api_url}/admin/songs"
    assert main(["repo", "create", "admin/songs", "--server", local_stack.api_url, *admin]) == 0

    assert main(["push", "-C", str(source), "--remote", remote, *admin]) == 0
    pushed = capsys.readouterr().out
    assert "written: 4 commits, 4 snapshots" in pushed
    # The side branch's commit arrived with the merge: its push carries no commits.
    assert (
        main(["push", "-C", str(source), "--remote", remote, "--branch", "feature/x", *admin]) == 0
    )
    assert "written: 0 commits" in capsys.readouterr().out

    assert main(["clone", remote, str(copy)]) == 0

    assert muse_files(copy) == muse_files(source)
    assert (copy / ".muse" / "HEAD").read_text() == "ref: refs/heads/main\n"
    head = read_commit(copy, list_branches(copy)["main"])
    assert head.parent_commit_id is not None
    second = read_commit(copy, head.parent_commit_id)
    assert second.fields["future_field"] == {"nested": [1, "two", None]}
    manifest = read_snapshot(copy, head.snapshot_id).manifest
    checked_out = {
        p.relative_to(copy).as_posix()
        for p in copy.rglob("*")
        if p.is_file() and ".muse" not in p.parts
    }
    assert checked_out == set(manifest)
    assert (copy / "deep/nested/c.mid").read_bytes() == bytes(range(256))
    assert (copy / "empty.txt").read_bytes() == b""


def test_incremental_push_up_to_date_refs_and_log(
    local_stack: LocalStack, admin: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source"
    generate_history(source, Workload(commits=4, files=6, changed_per_commit=2))
    remote = f"{local_stack.api_url}/admin/inc"
    assert main(["repo", "create", "admin/inc", "--server", local_stack.api_url, *admin]) == 0
    assert main(["push", "-C", str(source), "--remote", remote, *admin]) == 0
    generate_history(source, Workload(commits=2, files=6, changed_per_commit=2), start=4)
    capsys.readouterr()

    assert main(["push", "-C", str(source), "--remote", remote, *admin]) == 0
    assert "2 commits, 2 snapshots, 4 objects" in capsys.readouterr().out
    assert main(["push", "-C", str(source), "--remote", remote, *admin]) == 0
    assert "everything up to date" in capsys.readouterr().out

    assert main(["refs", remote]) == 0
    assert capsys.readouterr().out.split() == ["*", "main", list_branches(source)["main"][:8]]
    assert main(["log", remote, "--limit", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in lines] == ["5", "4", "3", "2", "1"]


def test_non_fast_forward_is_explained_then_forced(
    local_stack: LocalStack, admin: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    generate_history(ours, Workload(commits=3, files=4, changed_per_commit=1))
    generate_history(theirs, Workload(commits=2, files=5, changed_per_commit=1))
    remote = f"{local_stack.api_url}/admin/nff"
    assert main(["repo", "create", "admin/nff", "--server", local_stack.api_url, *admin]) == 0
    # The older form: the repository as the first argument, beside --remote.
    assert main(["push", str(ours), "--remote", remote, *admin]) == 0
    capsys.readouterr()

    assert main(["push", "-C", str(theirs), "--remote", remote, *admin]) == 1
    err = capsys.readouterr().err
    assert "error: non_fast_forward:" in err and "--force" in err
    assert main(["push", "-C", str(theirs), "--remote", remote, "--force", *admin]) == 1
    assert "error: branch_protected: branch 'main' is protected by rule ':default'" in (
        capsys.readouterr().err
    )
    assert main(["protect", "set", remote, ":default", "--force-push", "allow", *admin]) == 0

    assert main(["push", "-C", str(theirs), "--remote", remote, "--force", *admin]) == 0
    assert main(["refs", remote, "--full"]) == 0
    assert list_branches(theirs)["main"] in capsys.readouterr().out


def test_errors_are_one_line_with_a_code(
    local_stack: LocalStack, admin: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["repo", "create", "admin/dup", "--server", local_stack.api_url, *admin]) == 0
    assert main(["repo", "create", "admin/dup", "--server", local_stack.api_url, *admin]) == 1
    assert capsys.readouterr().err.startswith("error: repo_exists: ")

    assert (
        main(
            ["repo", "create", "admin/secret", "--private", "--server", local_stack.api_url, *admin]
        )
        == 0
    )
    capsys.readouterr()
    # Anonymous callers cannot tell a private repository from a missing one.
    assert main(["clone", f"{local_stack.api_url}/admin/secret", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert not (tmp_path / "nope").exists()

    generate_history(tmp_path / "src", Workload(commits=1, files=1, changed_per_commit=1))
    anonymous = ["--identity", str(tmp_path / "missing.json")]
    assert (
        main(
            [
                "push",
                "-C",
                str(tmp_path / "src"),
                "--remote",
                f"{local_stack.api_url}/admin/dup",
                *anonymous,
            ]
        )
        == 1
    )
    assert capsys.readouterr().err.startswith("error: no_identity: ")

    assert (
        main(["repo", "delete", "admin/dup", "--server", local_stack.api_url, "--yes", *admin]) == 0
    )
    assert main(["refs", f"{local_stack.api_url}/admin/dup"]) == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_identities_register_and_create_their_own_repos(
    local_stack: LocalStack, admin: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bob = tmp_path / "bob.json"
    assert main(["identity", "new", "bob", "--out", str(bob)]) == 0
    assert os.stat(bob).st_mode & 0o777 == 0o600
    public_key = json.loads(bob.read_text())["public_key"]
    printed = capsys.readouterr().out
    assert f"identity register bob --public-key={public_key}" in printed
    register = ["identity", "register", "bob", f"--public-key={public_key}"]
    assert main([*register, "--server", local_stack.api_url, *admin]) == 0
    assert main(["identity", "show", "--identity", str(bob), "--server", local_stack.api_url]) == 0
    assert "server knows bob (admin: False" in capsys.readouterr().out

    assert (
        main(
            ["repo", "create", "bob/tunes", "--server", local_stack.api_url, "--identity", str(bob)]
        )
        == 0
    )
    # Bob may not create repositories for someone else.
    assert (
        main(
            [
                "repo",
                "create",
                "carol/tunes",
                "--server",
                local_stack.api_url,
                "--identity",
                str(bob),
            ]
        )
        == 1
    )
    assert capsys.readouterr().err.startswith("error: ")


def test_upload_alone_is_ingested_by_the_event_path(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    """No unpack-mpack call: the S3 event reaches the poller, which runs the unpack function."""
    generate_history(tmp_path, Workload(commits=3, files=4, changed_per_commit=1))
    assert local_stack.admin is not None
    with MuseCloudClient(local_stack.api_url, local_stack.admin) as client:
        client.create_repo("admin", "events")
        data = encode_mpack(build_mpack(tmp_path, ["main"]))
        ticket = client.presign("admin", "events", mpack_key(data), len(data), branch="main")
        client.upload(ticket["upload_url"], ticket["headers"], data)
        deadline = time.monotonic() + 20
        while client.push_status("admin", "events", ticket["push_id"])["status"] != "ok":
            assert time.monotonic() < deadline, "the event path never ingested the upload"
            time.sleep(0.1)
        assert client.refs("admin", "events")["branch_heads"] == list_branches(tmp_path)


def test_client_covers_every_route(local_stack: LocalStack, tmp_path: Path) -> None:
    init_repo(tmp_path)
    # Past the inline limit, an object answers with a redirect to a presigned URL.
    big = bytes(range(256)) * (6 * 1024)
    head = commit(tmp_path, {"small.txt": b"hi", "big.bin": big}, "init", (), 0)
    write_branch_ref(tmp_path, "main", head)
    assert local_stack.admin is not None
    with MuseCloudClient(local_stack.api_url, local_stack.admin) as client:
        repo = client.create_repo("admin", "routes", "private")
        assert client.get_repo(repo["repoId"]) == client.repo_by_slug("admin", "routes") == repo
        data = encode_mpack(build_mpack(tmp_path, ["main"]))
        ticket = client.presign("admin", "routes", mpack_key(data), len(data), branch="main")
        client.upload(ticket["upload_url"], ticket["headers"], data, progress=True)
        pushed = client.unpack("admin", "routes", mpack_key(data), "main", head)
        assert client.push_status("admin", "routes", pushed["push_id"])["status"] == "ok"

        record = client.commit("admin", "routes", head)
        assert record == read_commit(tmp_path, head).to_dict()
        manifest = client.snapshot("admin", "routes", record["snapshot_id"])["manifest"]
        assert manifest == {"small.txt": blob_id(b"hi"), "big.bin": blob_id(big)}
        assert client.object("admin", "routes", blob_id(b"hi")) == b"hi"
        assert client.object("admin", "routes", blob_id(big)) == big
        assert [c["commit_id"] for c in client.log("admin", "routes")["commits"]] == [head]
        fetched = client.fetch("admin", "routes", want=[head], have=[])
        assert mpack_key(client.download(fetched["download_url"])) == fetched["mpack_key"]

        carol = new_identity("carol")
        assert client.create_identity("carol", carol.public_key)["identity_id"] == carol.identity_id
        client.set_collaborator(repo["repoId"], "carol", "read")
        assert client.collaborators(repo["repoId"])["collaborators"] == {"carol": "read"}
        with MuseCloudClient(local_stack.api_url, carol) as reader:
            assert reader.me()["handle"] == "carol"
            assert reader.refs("admin", "routes")["branch_heads"] == {"main": head}
        client.remove_collaborator(repo["repoId"], "carol")
        assert client.collaborators(repo["repoId"])["collaborators"] == {}
        client.delete_repo(repo["repoId"])
    with MuseCloudClient(local_stack.api_url) as anonymous, pytest.raises(ClientError) as refused:
        anonymous.refs("admin", "routes")
    assert refused.value.status == 404


def test_only_loopback_listens(local_stack: LocalStack) -> None:
    assert local_stack.api_url.startswith("http://127.0.0.1:")
    assert local_stack.moto_url.startswith("http://127.0.0.1:")
    answer = requests.get(f"{local_stack.api_url}/openapi.json", timeout=10)
    assert answer.status_code == 200 and "paths" in answer.json()


def test_stop_restores_the_environment(tmp_path: Path) -> None:
    before = os.environ.get("AWS_ENDPOINT_URL")
    with LocalStack(tmp_path) as running:
        assert os.environ["AWS_ENDPOINT_URL"] == running.moto_url
        key_mode = os.stat(running.admin_key_path).st_mode & 0o777
    assert os.environ.get("AWS_ENDPOINT_URL") == before
    assert key_mode == 0o600


def test_http_api_events_follow_payload_v2() -> None:
    event = http_api_event(
        "POST",
        "/admin/songs/log?limit=2&branch=a&branch=b",
        [("Content-Type", "application/x-msgpack"), ("X-Thing", "1"), ("x-thing", "2")],
        b"\x81\xa1a\x01",
    )
    assert event["version"] == "2.0"
    assert event["rawPath"] == "/admin/songs/log"
    assert event["rawQueryString"] == "limit=2&branch=a&branch=b"
    assert event["queryStringParameters"] == {"limit": "2", "branch": "a,b"}
    assert event["headers"] == {"content-type": "application/x-msgpack", "x-thing": "1,2"}
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["isBase64Encoded"] is True and event["body"] == "gaFhAQ=="
    text = http_api_event("PUT", "/x", [("content-type", "application/json")], b'{"a":1}')
    assert text["isBase64Encoded"] is False and text["body"] == '{"a":1}'

    status, headers, body = http_api_response(
        {
            "statusCode": 302,
            "headers": {"Location": "http://x"},
            "body": "aGk=",
            "isBase64Encoded": True,
        }
    )
    assert (status, headers, body) == (302, [("Location", "http://x")], b"hi")


def test_a_request_target_is_a_path_and_a_query_never_a_host() -> None:
    event = http_api_event("GET", "//admin/demo/refs", [], b"")
    assert (event["rawPath"], event["rawQueryString"]) == ("//admin/demo/refs", "")
    assert event["requestContext"]["http"]["path"] == "//admin/demo/refs"
    event = http_api_event("GET", "//admin/demo/log?cursor=a?b&limit=1", [], b"")
    assert (event["rawPath"], event["rawQueryString"]) == ("//admin/demo/log", "cursor=a?b&limit=1")
    assert event["queryStringParameters"] == {"cursor": "a?b", "limit": "1"}


def test_cookies_arrive_in_their_own_field() -> None:
    event = http_api_event(
        "GET", "/x", [("Cookie", "a=1; b=2"), ("Accept", "*/*"), ("cookie", "c=3")], b""
    )
    assert event["cookies"] == ["a=1", "b=2", "c=3"]
    assert event["headers"] == {"accept": "*/*"}
    assert "cookies" not in http_api_event("GET", "/x", [("Accept", "*/*")], b"")


@pytest.mark.parametrize("lengths", [["-1"], ["abc"], ["+5"], ["1_0"], ["5", "6"]], ids=repr)
def test_unreadable_content_lengths_are_400(local_stack: LocalStack, lengths: list[str]) -> None:
    host, port = local_stack.api_url.removeprefix("http://").split(":")
    framing = "".join(f"Content-Length: {value}\r\n" for value in lengths)
    request = f"POST /admin/songs/fetch/mpack HTTP/1.1\r\nHost: {host}\r\n{framing}\r\nhello"
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request.encode())
        answer = connection.makefile("rb").readline()
    assert answer.split()[1] == b"400", answer


def test_bodies_past_api_gateways_limit_are_refused(local_stack: LocalStack) -> None:
    too_big = b"x" * (10 * 1024 * 1024 + 1)
    answer = requests.post(
        f"{local_stack.api_url}/admin/songs/push/unpack-mpack", data=too_big, timeout=30
    )
    assert answer.status_code == 413


def test_public_keys_starting_with_a_dash_parse() -> None:
    args = build_parser().parse_args(["identity", "register", "bob", "--public-key=-AbC_x"])
    assert args.public_key == "-AbC_x"


@pytest.mark.parametrize(("status", "code"), [(504, "gateway_timeout"), (409, "push_in_progress")])
def test_push_waits_on_the_record_when_unpack_cannot_answer(
    local_stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int, code: str
) -> None:
    """A gateway timeout, or a pack the event path is ingesting: the push record tells the end."""
    generate_history(tmp_path, Workload(commits=2, files=3, changed_per_commit=1))
    assert local_stack.admin is not None
    name = f"waits-{status}"

    def unanswered(self: MuseCloudClient, *args: object, **kwargs: object) -> dict[str, Any]:
        raise ClientError(status, code, "no answer in time")

    monkeypatch.setattr(MuseCloudClient, "unpack", unanswered)
    with MuseCloudClient(local_stack.api_url, local_stack.admin) as client:
        client.create_repo("admin", name)
        remote = Remote.parse(f"{local_stack.api_url}/admin/{name}")
        result = send_push(client, remote, prepare_push(client, remote, tmp_path))
        assert result.answer["status"] == "ok"
        assert result.answer["commits_written"] == 2
        assert client.refs("admin", name)["branch_heads"] == list_branches(tmp_path)


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND"])
def test_methods_no_route_takes_are_a_coded_405(local_stack: LocalStack, method: str) -> None:
    answer = requests.request(method, f"{local_stack.api_url}/api/repos", timeout=30)
    assert answer.status_code == 405
    assert answer.json() == {
        "code": "method_not_allowed",
        "message": f"Unsupported method ({method!r})",
        "item": method,
    }
