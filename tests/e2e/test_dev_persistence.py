"""What ``muse-cloud dev`` keeps across a stop and start, and across a crash: identities,
tokens and repositories, as a user relies on them the next morning."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import requests

from muse_cloud_cli.signer import KeyFile

from .test_dev_server import MUSE_CLOUD, api_url, muse_cloud, running_dev


def _identity_and_token(url: str, admin: Path, tmp_path: Path) -> tuple[Path, str]:
    bob = tmp_path / "bob.json"
    assert muse_cloud("identity", "new", "bob", "--out", str(bob)).returncode == 0
    key = KeyFile.load(bob)
    registered = muse_cloud(
        "identity", "register", "bob", f"--public-key={key.public_key}", "--server", url,
        identity=admin,
    )  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    created = muse_cloud("repo", "create", "bob/tunes", "--server", url, identity=bob)
    assert created.returncode == 0, created.stderr
    made = muse_cloud("token", "create", "--scope", "read", "--server", url, identity=bob)
    assert made.returncode == 0, made.stderr
    return bob, made.stdout.strip().splitlines()[-1]


def _still_known(url: str, bob: Path, token: str) -> None:
    shown = muse_cloud("identity", "show", "--server", url, identity=bob)
    assert shown.returncode == 0 and "bob" in shown.stdout, shown.stderr
    refs = requests.get(
        f"{url}/bob/tunes/refs", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert refs.status_code == 200, refs.text


def test_identities_and_tokens_outlive_a_restart(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "dev.log"
    with running_dev(data_dir, log) as url:
        bob, token = _identity_and_token(url, data_dir / "admin.json", tmp_path)
    with running_dev(data_dir, log) as url:
        _still_known(url, bob, token)


def test_a_crash_loses_no_more_than_the_last_save(tmp_path: Path) -> None:
    """Killed with SIGKILL (no stop, no final save): what was saved before is all there."""
    data_dir, log = tmp_path / "data", tmp_path / "dev.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [MUSE_CLOUD, "dev", "--port", "0", "--data-dir", str(data_dir),
             "--snapshot-seconds", "0.5"],
            stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    try:
        url = api_url(server, log)
        bob, token = _identity_and_token(url, data_dir / "admin.json", tmp_path)
        time.sleep(2)  # several saves
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    with running_dev(data_dir, tmp_path / "again.log") as url:
        _still_known(url, bob, token)
