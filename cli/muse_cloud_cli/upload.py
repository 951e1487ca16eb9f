"""Sending a pack to object storage as presign answered: in one PUT, or, for a large pack, in
parts (S3 multipart upload) that survive a dropped connection and an interrupted push.

A part is PUT to its own presigned URL and retried like any upload (``send_with_retries``); a
part that still fails is left for the next round, which asks the server where the upload stands
(``push/mpack-parts``: the parts in place, fresh URLs for the missing ones). A push started
again after an interruption gets the same upload from presign, with the parts already sent
listed, and sends only the rest. The server then joins the parts (``push/mpack-complete``).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from mmap import mmap
from typing import Any

from muse_cloud_cli.client import ClientError, MuseCloudClient, Remote, transfer_progress
from muse_cloud_cli.errors import CliError

# Parts in flight at once: enough to fill a link whose one connection cannot.
PARALLEL_PARTS = 4


def upload_pack(
    client: MuseCloudClient,
    remote: Remote,
    ticket: Mapping[str, Any],
    data: bytes | mmap,
    *,
    progress: bool = False,
) -> None:
    """Upload ``data`` as the presign answer ``ticket`` says."""
    parts = ticket.get("multipart")
    if parts is None:
        client.upload(ticket["upload_url"], ticket["headers"], data, progress=progress)
        return
    key = ticket["mpack_key"]
    _send_parts(client, remote, key, parts, data, progress)
    client.complete_upload(remote.owner, remote.name, key, parts["upload_id"])


def _send_parts(
    client: MuseCloudClient,
    remote: Remote,
    key: str,
    state: Mapping[str, Any],
    data: bytes | mmap,
    progress: bool,
) -> None:
    size = int(state["part_size"])
    if -(-len(data) // size) != int(state["part_count"]):
        raise CliError(
            "upload_mismatch",
            f"the server cut {len(data):,} bytes into {state['part_count']} parts of {size:,}",
        )

    bar = transfer_progress() if progress else None
    done = sum(int(p["size"]) for p in state["uploaded"])
    task = bar.add_task("upload", total=len(data), completed=done) if bar is not None else None

    def send(part: Mapping[str, Any]) -> ClientError | None:
        start = (int(part["part_number"]) - 1) * size
        chunk = data[start : start + size]
        try:
            client.upload(part["url"], {}, chunk)
        except ClientError as error:
            return error
        if bar is not None and task is not None:
            bar.advance(task, len(chunk))
        return None

    with bar or nullcontext(), ThreadPoolExecutor(PARALLEL_PARTS) as pool:
        while state["part_urls"]:
            failed = [e for e in pool.map(send, state["part_urls"]) if e is not None]
            if len(failed) == len(state["part_urls"]):
                # Not one part of this round went up: waiting for another would not help.
                raise failed[0]
            state = client.upload_parts(remote.owner, remote.name, key, state["upload_id"])
