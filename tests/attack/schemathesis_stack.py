"""schemathesis against ``/openapi.json`` of the local stack (loopback only): every generated
request, on every operation, must be answered without a 5xx. It runs twice: unsigned, and
through a proxy that signs every request as the stack's admin (MSign over the exact bytes sent),
so the write routes are reached past authentication, as a signed client reaches them.

Run (``make soak`` does): ``PYTHONPATH=tests python -m attack.schemathesis_stack [EXAMPLES]``
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from muse_cloud_cli.signer import KeyFile, sign_request
from muse_cloud_dev.local_stack import LocalStack

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
# A bound on each run, whatever the number of examples asks for.
RUN_SECONDS = 900
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@contextmanager
def signing_proxy(target: str, key: KeyFile) -> Iterator[str]:
    """A loopback HTTP server that signs each request with ``key`` and forwards it to
    ``target``; yields its base URL."""

    class Signing(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Authorization"] = sign_request(key, self.command, self.path, body)
            answer = requests.request(
                self.command, target + self.path, data=body, headers=headers, timeout=60
            )
            self.send_response(answer.status_code)
            for name, value in answer.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        def __getattr__(self, name: str) -> Any:
            # Whatever the method (schemathesis also sends TRACE and QUERY), the stack answers.
            if name.startswith("do_"):
                return self._forward
            raise AttributeError(name)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Signing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_schemathesis(base_url: str, examples: str) -> int:
    command = [
        SCHEMATHESIS,
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        examples,
        "--seed",
        "1",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--continue-on-failure",
    ]
    return subprocess.run(command, timeout=RUN_SECONDS, check=False).returncode


def main() -> int:
    examples = sys.argv[1] if len(sys.argv) > 1 else "50"
    with (
        tempfile.TemporaryDirectory(prefix="schemathesis-") as data,
        LocalStack(Path(data)) as stack,
    ):
        unsigned = run_schemathesis(stack.api_url, examples)
        with signing_proxy(stack.api_url, KeyFile.load(stack.admin_key_path)) as proxy:
            signed = run_schemathesis(proxy, examples)
    return unsigned or signed


if __name__ == "__main__":
    sys.exit(main())
