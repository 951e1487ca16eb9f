"""A large pack pushed in parts (S3 multipart upload) beside a single PUT of the same bytes.

Starts the local stack (moto's S3 in server mode, the API function behind a real HTTP server, the
SQS poller feeding the unpack function), builds one real pack of incompressible objects (64 MiB
each, 1 GiB by default), and uploads it to two repositories through the API: once whole (presign
without ``multipart``: one presigned PUT) and once in parts (presign with ``multipart``, the
client's parts in parallel, ``push/mpack-complete``), each by the client's own ``upload_pack``.
After each upload the benchmark waits for the event-driven ingestion of that pack to end before
the next upload starts, so no ingestion runs beside a measured upload; the ingestion of the pack
sent in parts must succeed (its joined bytes hash to the pack's key). The time the server takes
to join the parts is shown apart: S3 joins them without moving a byte, moto copies them all
(in this process, beside the client), so the target is on sending the parts.

Run: ``python benchmarks/bench_uploads.py [--mib 1024] [--runs 1]``. Exits 1 when an upload or
an ingestion fails, or when sending the parts takes over 1.5 times the single PUT.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from mmap import mmap
from pathlib import Path
from typing import Any

from muse_cloud_cli.client import MuseCloudClient, Remote
from muse_cloud_cli.push import prepare_push, wait_for_push
from muse_cloud_cli.upload import upload_pack
from muse_cloud_dev.local_stack import LocalStack
from muse_core.commits import CommitRecord, write_commit
from muse_core.ids import blob_id
from muse_core.mpack import mpack_key
from muse_core.object_store import write_object
from muse_core.refs import write_branch_ref
from muse_core.repo import init_repo
from muse_core.snapshot import compute_snapshot_id
from muse_core.snapshots import SnapshotRecord, write_snapshot

MIB = 1024 * 1024
OBJECT_MIB = 64
# Sending the parts may cost this much more than one PUT (presigning and listing them).
TARGET_RATIO = 1.5


def _repository(root: Path, objects: int) -> None:
    """One commit of ``objects`` random takes of 64 MiB each, in the client's format."""
    init_repo(root)
    manifest = {}
    for n in range(objects):
        data = os.urandom(OBJECT_MIB * MIB)
        write_object(root, blob_id(data), data)
        manifest[f"takes/{n}.wav"] = blob_id(data)
    at = "2026-12-04T12:00:00+00:00"
    snapshot_id = compute_snapshot_id(manifest)
    write_snapshot(root, SnapshotRecord(snapshot_id, manifest, at))
    record = CommitRecord.create(snapshot_id=snapshot_id, message="takes", committed_at=at)
    write_commit(root, record)
    write_branch_ref(root, "main", record.commit_id)


class _TimedClient(MuseCloudClient):
    """Notes how long the server took to join the parts (S3's CompleteMultipartUpload, which
    moto does by copying every byte, and real S3 without moving them)."""

    completing_seconds = 0.0

    def complete_upload(
        self, owner: str, name: str, mpack_key: str, upload_id: str
    ) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            return super().complete_upload(owner, name, mpack_key, upload_id)
        finally:
            self.completing_seconds = time.perf_counter() - started


def _push(
    client: MuseCloudClient, remote: Remote, data: bytes | mmap, head: str, in_parts: bool
) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """Presign and upload (timed), then wait for the event path's ingestion."""
    started = time.perf_counter()
    ticket = client.presign(
        remote.owner, remote.name, mpack_key(data), len(data), branch="main", head=head,
        multipart=in_parts,
    )  # fmt: skip
    assert ("multipart" in ticket) == in_parts, ticket
    upload_pack(client, remote, ticket, data)
    seconds = time.perf_counter() - started
    return seconds, ticket, wait_for_push(client, remote, ticket["push_id"])


def run(mib: int, runs: int) -> bool:
    single: list[float] = []
    parts: list[float] = []
    joining: list[float] = []
    ingest_ms: list[int] = []
    with tempfile.TemporaryDirectory() as scratch, LocalStack(Path(scratch) / "stack") as stack:
        assert stack.admin is not None
        source = Path(scratch) / "takes"
        _repository(source, max(1, mib // OBJECT_MIB))
        client = _TimedClient(stack.api_url, stack.admin)
        with client:
            client.create_repo("admin", "source")
            started = time.perf_counter()
            prepared = prepare_push(client, Remote.parse(f"{stack.api_url}/admin/source"), source)
            data, head = prepared.data, prepared.head
            print(f"pack: {len(data):,} bytes ({len(data) / MIB:,.0f} MiB), built in "
                  f"{time.perf_counter() - started:.1f} s")  # fmt: skip
            for n in range(runs):
                for kind, times in (("whole", single), ("parts", parts)):
                    name = f"{kind}-{n}"
                    client.create_repo("admin", name)
                    remote = Remote.parse(f"{stack.api_url}/admin/{name}")
                    seconds, ticket, record = _push(client, remote, data, head, kind == "parts")
                    times.append(seconds)
                    if record.get("status") != "ok" or record.get("bytes") != len(data):
                        print(f"MISS ingestion of the pack sent {kind}: {record}")
                        return False
                    shape = ticket.get("multipart")
                    cut = (
                        f" ({shape['part_count']} parts of {shape['part_size'] // MIB} MiB, "
                        f"joining them {client.completing_seconds:.2f} s)"
                        if shape
                        else ""
                    )
                    print(
                        f"run {n + 1} {kind}: upload {seconds:.2f} s{cut}; "
                        f"ingestion {record['total_ms'] / 1000:.1f} s"
                    )
                    if kind == "parts":
                        joining.append(client.completing_seconds)
                        ingest_ms.append(int(record["total_ms"]))
    whole_s, parts_s = statistics.median(single), statistics.median(parts)
    join_s = statistics.median(joining)
    # Judged on the transfer: joining is a metadata operation on S3, a copy of every byte on moto.
    ratio = (parts_s - join_s) / whole_s
    print()
    print("| pack | single PUT | in parts | of which joining (moto) | sending / PUT | target | |")
    print("|---|---|---|---|---|---|---|")
    verdict = "PASS" if ratio <= TARGET_RATIO else "MISS"
    print(
        f"| {len(data) / MIB:,.0f} MiB | {whole_s:.2f} s | {parts_s:.2f} s | {join_s:.2f} s | "
        f"{ratio:.2f}x | <= {TARGET_RATIO}x | {verdict} |"
    )
    ingested = statistics.median(ingest_ms) / 1000
    print(f"ingestion of the pack sent in parts (median): {ingested:.1f} s")
    return ratio <= TARGET_RATIO


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="pack size in MiB (default 1024)")
    parser.add_argument("--runs", type=int, default=1, help="uploads of each kind (median)")
    args = parser.parse_args()
    return 0 if run(args.mib, args.runs) else 1


if __name__ == "__main__":
    sys.exit(main())
