"""``muse-cloud dev`` in its own process, driven by other ``muse-cloud`` processes over HTTP,
then stopped with Ctrl-C (SIGINT) as a user would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from muse_cloud_cli.workload import Workload, generate_history

MUSE_CLOUD = str(Path(sys.executable).parent / "muse-cloud")


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path / "data"
    # A file, not a pipe: the functions log to stdout, and a full pipe would stall the server.
    log = tmp_path / "dev.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [MUSE_CLOUD, "dev", "--port", "0", "--data-dir", str(data_dir)],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 30
        while "Ctrl-C" not in log.read_text():
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        url = next(
            line.split()[-1]
            for line in log.read_text().splitlines()
            if line.startswith("Muse Cloud API")
        )
        assert url.startswith("http://127.0.0.1:")
        yield url, data_dir / "admin.json"
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def muse_cloud(*args: str, identity: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MUSE_CLOUD_IDENTITY"}
    if identity is not None:
        env["MUSE_CLOUD_IDENTITY"] = str(identity)
    return subprocess.run([MUSE_CLOUD, *args], capture_output=True, text=True, timeout=60, env=env)


def test_dev_push_clone_then_ctrl_c(dev_server: tuple[str, Path], tmp_path: Path) -> None:
    url, admin = dev_server
    assert os.stat(admin).st_mode & 0o777 == 0o600
    source, copy = tmp_path / "source", tmp_path / "copy"
    generate_history(source, Workload(commits=6, files=8, changed_per_commit=2))

    created = muse_cloud("repo", "create", "admin/e2e", "--server", url, identity=admin)
    assert created.returncode == 0, created.stderr
    pushed = muse_cloud("push", "-C", str(source), "--remote", f"{url}/admin/e2e", identity=admin)
    assert pushed.returncode == 0, pushed.stderr
    assert "written: 6 commits" in pushed.stdout
    cloned = muse_cloud("clone", f"{url}/admin/e2e", str(copy))
    assert cloned.returncode == 0, cloned.stderr
    head = (source / ".muse/refs/heads/main").read_text()
    assert (copy / ".muse/refs/heads/main").read_text() == head

    refused = muse_cloud("repo", "create", "admin/e2e", "--server", url, identity=admin)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: repo_exists: ")
