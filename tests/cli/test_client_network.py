"""The client against a real HTTP server that is busy, flaky or gone, and the CLI's first-run
details: version, help on every option, confirmations, bounds on options."""

from __future__ import annotations

import argparse
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from muse_cloud_cli import client as client_module
from muse_cloud_cli.client import ClientError, MuseCloudClient
from muse_cloud_cli.main import build_parser, main


class _Flaky(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answers: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), _FlakyHandler)
        self.answers = answers
        self.requests: list[tuple[str, str, str]] = []


class _FlakyHandler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        server: Any = self.server
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        server.requests.append((self.command, self.path, self.headers.get("Authorization", "")))
        status = server.answers.pop(0) if server.answers else 200
        body = json.dumps(
            {"branch_heads": {}, "repo_id": "r"}
            if status == 200
            else {"code": f"status_{status}", "message": "busy"}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status in (429, 503):
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[_Flaky]:
    server = _Flaky([])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "FIRST_DELAY", 0.01)


def test_busy_answers_are_retried_and_every_attempt_is_signed_afresh(flaky: _Flaky) -> None:
    from muse_cloud_cli.signer import new_identity

    flaky.answers = [429, 503, 503]
    url = f"http://127.0.0.1:{flaky.server_address[1]}"
    with MuseCloudClient(url, new_identity("alice")) as client:
        assert client.refs("alice", "songs")["repo_id"] == "r"
    assert [r[0:2] for r in flaky.requests] == [("GET", "/alice/songs/refs")] * 4
    signatures = [r[2] for r in flaky.requests]
    assert all(signatures) and len(set(signatures)) == 4


def test_unsure_answers_are_retried_only_for_idempotent_calls(flaky: _Flaky) -> None:
    url = f"http://127.0.0.1:{flaky.server_address[1]}"
    flaky.answers = [502, 504]
    with MuseCloudClient(url) as client:
        client.fetch("alice", "songs", want=[], have=[])
    assert len(flaky.requests) == 3
    flaky.requests.clear()
    flaky.answers = [502]
    with MuseCloudClient(url) as client, pytest.raises(ClientError) as refused:
        client.create_repo("alice", "songs")
    assert refused.value.status == 502 and len(flaky.requests) == 1


def test_an_upload_is_retried(flaky: _Flaky) -> None:
    url = f"http://127.0.0.1:{flaky.server_address[1]}/bucket/key"
    flaky.answers = [503, 500]
    with MuseCloudClient("http://127.0.0.1:1") as client:
        client.upload(url, {"Content-Type": "application/octet-stream"}, b"pack bytes")
    assert [r[0] for r in flaky.requests] == ["PUT"] * 3


def test_a_gone_server_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["refs", f"http://127.0.0.1:{port}/alice/songs"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: unreachable: cannot reach http://127.0.0.1:{port} (GET): nothing listens "
        "there (is `muse-cloud dev` running? is the URL right?)\n"
    )


def test_version_and_help_on_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("muse-cloud 0.1.0")

    def undocumented(parser: argparse.ArgumentParser, where: str) -> list[str]:
        missing = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    missing += undocumented(sub, f"{where} {name}")
            elif not action.help:
                missing.append(f"{where}: {action.dest}")
        return missing

    assert undocumented(build_parser(), "muse-cloud") == []


def test_options_out_of_bounds_and_unconfirmed_deletes_are_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["log", "http://127.0.0.1:1/a/b", "--limit", "0"])
    assert done.value.code == 2 and "must be at least 1" in capsys.readouterr().err

    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["repo", "delete", "alice/songs", "--server", "http://127.0.0.1:1"]) == 1
    assert capsys.readouterr().err.startswith("error: confirmation_needed: ")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "other")
    assert main(["repo", "delete", "alice/songs", "--server", "http://127.0.0.1:1"]) == 1
    assert capsys.readouterr().err.startswith("error: not_confirmed: alice/songs was not deleted")
