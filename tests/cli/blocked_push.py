"""``python blocked_push.py KEY_FILE REPOSITORY REMOTE_URL PART``: push, with the upload of part
``PART`` hanging until the process is killed (the interrupted push the resumption tests
kill)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import requests

from muse_cloud_cli.client import MuseCloudClient, Remote
from muse_cloud_cli.push import prepare_push, send_push
from muse_cloud_cli.signer import KeyFile


class HangingPart(requests.Session):
    def __init__(self, part: int) -> None:
        super().__init__()
        self.marker = f"partNumber={part}&"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if method == "PUT" and self.marker in str(url):
            threading.Event().wait()
        return super().request(method, url, *args, **kwargs)


def main(key_file: str, repository: str, remote_url: str, part: str) -> None:
    remote = Remote.parse(remote_url)
    session = HangingPart(int(part))
    with MuseCloudClient(remote.base_url, KeyFile.load(Path(key_file)), session) as client:
        send_push(client, remote, prepare_push(client, remote, Path(repository)))


if __name__ == "__main__":
    main(*sys.argv[1:])
