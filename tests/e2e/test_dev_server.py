"""``muse-cloud dev`` in its own process, driven by other ``muse-cloud`` processes over HTTP,
then stopped with Ctrl-C (SIGINT) as a user would."""

from __future__ import annotations

import os
import pty
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from muse_cloud_cli.workload import Workload, generate_history

MUSE_CLOUD = str(Path(sys.executable).parent / "muse-cloud")


def api_url(server: subprocess.Popen[str], log: Path) -> str:
    """The API URL a starting ``muse-cloud dev`` prints, once it says it is ready."""
    deadline = time.monotonic() + 60
    while "Ctrl-C" not in log.read_text():
        assert server.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    url = next(
        line.split()[-1]
        for line in log.read_text().splitlines()
        if line.startswith("Muse Cloud API")
    )
    assert url.startswith("http://127.0.0.1:")
    return url


@contextmanager
def running_dev(data_dir: Path, log: Path, *extra: str) -> Iterator[str]:
    """``muse-cloud dev`` until the block ends, then Ctrl-C; yields the API URL."""
    # A file, not a pipe: the functions log to stdout, and a full pipe would stall the server.
    with log.open("w") as out:
        server = subprocess.Popen(
            [MUSE_CLOUD, "dev", "--port", "0", "--data-dir", str(data_dir), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        yield api_url(server, log)
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=60) == 0, log.read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path / "data"
    with running_dev(data_dir, tmp_path / "dev.log") as url:
        yield url, data_dir / "admin.json"


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


def test_dev_keeps_its_data_across_a_restart_and_reset_empties_it(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "dev.log"
    admin = data_dir / "admin.json"
    source = tmp_path / "source"
    generate_history(source, Workload(commits=4, files=5, changed_per_commit=1))
    with running_dev(data_dir, log) as url:
        assert (
            muse_cloud("repo", "create", "admin/kept", "--server", url, identity=admin).returncode
            == 0
        )
        pushed = muse_cloud(
            "push", "-C", str(source), "--remote", f"{url}/admin/kept", "-u", identity=admin
        )
        assert pushed.returncode == 0, pushed.stderr
    assert "restored from" not in log.read_text()

    with running_dev(data_dir, log) as url:
        assert "restored from" in log.read_text()
        # The port may differ: the recorded remote is moved to this run's.
        config = source / ".muse" / "config.toml"
        config.write_text(f'[remotes.origin]\nurl = "{url}/admin/kept"\nbranch = "main"\n')
        cloned = muse_cloud("clone", f"{url}/admin/kept", str(tmp_path / "copy"))
        assert cloned.returncode == 0, cloned.stderr
        head = (source / ".muse/refs/heads/main").read_text()
        assert (tmp_path / "copy/.muse/refs/heads/main").read_text() == head
        generate_history(source, Workload(commits=1, files=5, changed_per_commit=1), start=4)
        again = muse_cloud("push", "-C", str(source), identity=admin)
        assert again.returncode == 0, again.stderr
        assert "written: 1 commit," in again.stdout

    with running_dev(data_dir, log, "--reset") as url:
        gone = muse_cloud("refs", f"{url}/admin/kept")
        assert gone.returncode == 1 and gone.stderr.startswith("error: not_found: ")
        stranger = tmp_path / "stranger.json"
        assert muse_cloud("identity", "new", "stranger", "--out", str(stranger)).returncode == 0
        unknown = muse_cloud("repo", "create", "stranger/x", "--server", url, identity=stranger)
        assert unknown.returncode == 1
        assert "error: auth_unknown_key" in unknown.stderr and "--reset" in unknown.stderr


def test_a_busy_port_is_named_with_the_way_out(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [MUSE_CLOUD, "dev", "--port", str(port), "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: port_in_use: port {port} on 127.0.0.1 is in use (another `muse-cloud dev`?); "
        "stop it or choose another with --port"
    )


def on_a_terminal(*args: str) -> tuple[int, str]:
    """Run ``muse-cloud`` with stdout and stderr on a pseudo-terminal; its exit code and output."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("MUSE_CLOUD_IDENTITY", "TERM")}
    process = subprocess.Popen(
        [MUSE_CLOUD, *args], stdout=follower, stderr=follower, env={**env, "TERM": "xterm"}
    )
    os.close(follower)
    output = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        output.extend(chunk)
    os.close(leader)
    return process.wait(timeout=60), output.decode("utf-8", "replace")


def test_progress_shows_on_a_terminal_and_not_with_quiet(
    dev_server: tuple[str, Path], tmp_path: Path
) -> None:
    url, admin = dev_server
    generate_history(tmp_path / "source", Workload(commits=30, files=20, changed_per_commit=3))
    assert (
        muse_cloud("repo", "create", "admin/shown", "--server", url, identity=admin).returncode == 0
    )
    push = [
        "push",
        "-C",
        str(tmp_path / "source"),
        "--remote",
        f"{url}/admin/shown",
        "--identity",
        str(admin),
    ]
    code, shown = on_a_terminal(*push)
    assert code == 0, shown
    assert "reading the remote's refs" in shown and "building the pack of main" in shown
    assert "the server is verifying and writing 30 commits" in shown

    code, shown = on_a_terminal("clone", f"{url}/admin/shown", str(tmp_path / "a"))
    assert code == 0, shown
    assert "the server is building the pack" in shown and "download" in shown
    assert "checking out" in shown

    code, quiet = on_a_terminal("clone", "--quiet", f"{url}/admin/shown", str(tmp_path / "b"))
    assert code == 0, quiet
    assert "building the pack" not in quiet and "download" not in quiet
    assert "\x1b[" not in quiet
    piped = muse_cloud("clone", f"{url}/admin/shown", str(tmp_path / "c"))
    assert piped.returncode == 0 and "download" not in piped.stderr + piped.stdout
