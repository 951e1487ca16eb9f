"""A long session on one local stack: many one-commit pushes over HTTP, then one push that
creates 90 branches at once (one DynamoDB transaction), as a day with ``muse-cloud dev`` goes.

Reports the time per push as the session goes on, the memory of the stack's process (where moto
keeps every table and object) and of its workers, and the many-branch push at the end.
Targets: a push late in the session takes at most twice what an early one does; the
many-branch push lands in under 10 s (moto once deep-copied the whole table per action of a
transaction: 123 s for 100 actions on a table of 5,000 items).

Run: ``python benchmarks/bench_dev_session.py [PUSHES]`` (default 1,000). Linux only (/proc).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from muse_cloud_cli.client import MuseCloudClient, Remote
from muse_cloud_cli.push import prepare_push, send_push
from muse_cloud_cli.signer import KeyFile
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.local_stack import LocalStack
from muse_core.mpack import build_mpack, encode_mpack, mpack_key
from muse_core.refs import read_branch_ref

MIB = 1024 * 1024
# A push's ref transaction also holds the rules' and the default branch's checks, the outbox
# item and one action per new directory: 90 new branches under one directory fit in 100.
BRANCHES = 90
LATE_OVER_EARLY = 2.0
BRANCHES_SECONDS = 10.0
WORKLOAD = Workload(commits=1, files=50, changed_per_commit=2)


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def memory_mib(field: str = "VmRSS") -> tuple[float, float]:
    """This process (the stack, moto in it) and its child processes (the function workers):
    their resident memory now, or with ``VmHWM`` at its peak."""
    me = os.getpid()
    children = [
        int(stat.parent.name)
        for stat in Path("/proc").glob("[0-9]*/stat")
        if _parent_of(stat) == me
    ]
    own = _rss_kib(me, field)
    return own / 1024, (own + sum(_rss_kib(c, field) for c in children)) / 1024


def _parent_of(stat: Path) -> int:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def many_branches(client: MuseCloudClient, remote: Remote, root: Path, start: int) -> float:
    """A new commit pushed as the head of ``BRANCHES`` new branches, in one pack: every ref is
    created in one transaction. Seconds from presign to the push being ``ok``."""
    old = read_branch_ref(root, "main")
    generate_history(root, WORKLOAD, start=start)
    new = read_branch_ref(root, "main")
    assert old is not None and new is not None
    tips = {f"topic/b{b:03d}": new for b in range(BRANCHES)}
    data = encode_mpack(build_mpack(root, tips, [old]))
    key = mpack_key(data)
    began = time.perf_counter()
    grant = client.presign(remote.owner, remote.name, key, len(data))
    client.upload(grant["upload_url"], grant["headers"], data)
    while client.push_status(remote.owner, remote.name, key[7:])["status"] not in ("ok", "failed"):
        time.sleep(0.05)
    elapsed = time.perf_counter() - began
    status = client.push_status(remote.owner, remote.name, key[7:])
    assert status["status"] == "ok", status
    assert len(client.refs(remote.owner, remote.name)["branch_heads"]) == BRANCHES + 1
    return elapsed


def main() -> int:
    pushes = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as scratch, LocalStack(Path(scratch) / "stack") as stack:
        root = Path(scratch) / "repo"
        generate_history(root, WORKLOAD)
        remote = Remote.parse(f"{stack.api_url}/admin/session")
        with MuseCloudClient(stack.api_url, KeyFile.load(stack.admin_key_path)) as client:
            client.create_repo("admin", "session")
            at_start = memory_mib()
            seconds: list[float] = []
            for n in range(pushes):
                if n:
                    generate_history(root, WORKLOAD, start=n)
                began = time.perf_counter()
                send_push(client, remote, prepare_push(client, remote, root, "main"))
                seconds.append(time.perf_counter() - began)
                if (n + 1) % max(1, pushes // 5) == 0:
                    own, whole = memory_mib()
                    print(
                        f"after {n + 1:5d} pushes: {statistics.median(seconds[-50:]) * 1000:5.0f}"
                        f" ms a push (median of the last 50); stack {own:5.0f} MiB, "
                        f"with its workers {whole:5.0f} MiB",
                        flush=True,
                    )
            branches = many_branches(client, remote, root, pushes)
        early, late = statistics.median(seconds[:50]), statistics.median(seconds[-50:])
        own, whole = memory_mib()
    print(f"stack at the start {at_start[0]:.0f} MiB ({at_start[1]:.0f} with its workers), "
          f"at the end {own:.0f} MiB ({whole:.0f})")  # fmt: skip
    print(f"early push {early * 1000:.0f} ms, late push {late * 1000:.0f} ms: "
          f"{late / early:.2f}x (target <= {LATE_OVER_EARLY}x)")  # fmt: skip
    print(f"{BRANCHES} branches created in one push: {branches:.2f} s "
          f"(target < {BRANCHES_SECONDS} s)")  # fmt: skip
    passed = late <= LATE_OVER_EARLY * early and branches < BRANCHES_SECONDS
    print("all targets met" if passed else "MISS")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
