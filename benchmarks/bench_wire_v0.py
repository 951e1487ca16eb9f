"""The seed workload pushed over wire v0 (the Muse client's protocol) beside the mpack push.

Starts the local stack (moto server, the API function behind a real HTTP server, the SQS poller),
generates the seed history (1,031 commits x 700 files, 5 changed per commit, 512-byte blobs) and
pushes it to two repositories: with ``muse-cloud push`` (one mpack by presigned PUT), and over
v0 as the Muse client sends it. A v0 push carries every commit's full manifest, so the whole
seed in one push is a 63 MB request, over what a synchronous Lambda takes (6 MB of event, the
body base64-encoded in it: about 4.5 MB of msgpack): the benchmark measures that request, finds
the most commits one v0 push and one v0 clone can carry, then pushes the seed over v0 in
increments that fit (intermediate heads of the branch, as a user would push a long history).

Run: ``python benchmarks/bench_wire_v0.py``. Exits 1 when a push fails or an increment that
should fit is refused.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgpack

from muse_cloud.services.wire_v0 import MAX_ANSWER_BYTES
from muse_cloud_cli.client import MuseCloudClient
from muse_cloud_cli.main import main as muse_cloud
from muse_cloud_cli.signer import KeyFile
from muse_cloud_cli.tokens import create_token
from muse_cloud_cli.wire_v0_client import WireClient, WireError, bundle_for, push_branch
from muse_cloud_cli.workload import SEED, Workload, generate_history
from muse_cloud_dev.local_stack import LocalStack
from muse_core.commits import read_commit
from muse_core.mpack import build_mpack, encode_mpack
from muse_core.refs import write_branch_ref

MB = 1_000_000


def _first_parent_chain(root: Path, head: str) -> list[str]:
    """Oldest first: the seed history is linear."""
    chain = []
    current: str | None = head
    while current:
        chain.append(current)
        current = read_commit(root, current).parent_commit_id
    return chain[::-1]


def _push_body_bytes(root: Path, head: str, have: set[str], branch: str) -> int:
    bundle = bundle_for(root, head, have)
    body = {"bundle": bundle, "branch": branch, "force": False}
    return len(msgpack.packb(body, use_bin_type=True))


def _largest_fitting(chain: list[str], fits: Callable[[int], bool]) -> int:
    """The most commits (a prefix of ``chain``) for which ``fits(n)`` holds, by bisection."""
    low, high = 0, len(chain)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def run(workload: Workload) -> bool:
    with tempfile.TemporaryDirectory() as scratch, LocalStack(Path(scratch) / "stack") as stack:
        source = Path(scratch) / "seed"
        started = time.perf_counter()
        generate_history(source, workload)
        print(f"seed workload generated in {time.perf_counter() - started:.1f} s")
        assert stack.admin is not None
        admin: KeyFile = stack.admin
        with MuseCloudClient(stack.api_url, admin) as signed:
            signed.create_repo("admin", "by-mpack")
            signed.create_repo("admin", "by-v0")
            signed.create_repo("admin", "by-v0-steps")
            secret = create_token(signed, "bench", "write", None)["token"]

        pack = encode_mpack(build_mpack(source, ["main"]))
        started = time.perf_counter()
        code = muse_cloud(
            ["push", str(source), "--remote", f"{stack.api_url}/admin/by-mpack",
             "--identity", str(stack.admin_key_path)]
        )  # fmt: skip
        mpack_s = time.perf_counter() - started
        if code != 0:
            print("MISS mpack push failed")
            return False

        chain = _first_parent_chain(source, (source / ".muse/refs/heads/main").read_text())
        whole = _push_body_bytes(source, chain[-1], set(), "main")
        client = WireClient(f"{stack.api_url}/admin/by-v0", secret)
        try:
            push_branch(client, source, "main")
            whole_verdict = "accepted"
        except WireError as error:
            whole_verdict = f"refused {error.status} {error.body[:60]!r}"
        per_push = _largest_fitting(
            chain,
            lambda n: (
                n > 0 and _push_body_bytes(source, chain[n - 1], set(), "main") <= MAX_ANSWER_BYTES
            ),
        )

        client = WireClient(f"{stack.api_url}/admin/by-v0-steps", secret)
        started = time.perf_counter()
        ok = True
        for end in range(per_push, len(chain) + per_push, per_push):
            write_branch_ref(source, "main", chain[min(end, len(chain)) - 1])
            try:
                answer = push_branch(client, source, "main")
            except WireError as error:
                print(f"MISS v0 increment ending at commit {min(end, len(chain))}: {error}")
                ok = False
                break
            ok = ok and answer.get("ok") is True
        v0_s = time.perf_counter() - started
        write_branch_ref(source, "main", chain[-1])
        sent = sum(s for _, _, s, _ in client.calls)
        largest = max(s for _, _, s, _ in client.calls)
        pushes = sum(1 for _, path, _, _ in client.calls if path == "push")

        def clone_fits(n: int) -> bool:
            try:
                client.fetch([chain[n - 1]], [])
            except WireError as error:
                assert error.status == 413, error
                return False
            return True

        clone_commits = _largest_fitting(chain, lambda n: n > 0 and clone_fits(n))
        try:
            client.fetch([chain[-1]], [])
            clone_verdict = "answered"
        except WireError as error:
            clone_verdict = f"refused {error.status} {error.json()['code']}"
        started = time.perf_counter()
        increment = client.fetch([chain[-1]], [chain[-6]])
        fetch_s = time.perf_counter() - started
        same = client.refs()["branch_heads"] == {"main": chain[-1]}

        print(f"mpack push (build + upload + ingestion): {mpack_s:.2f} s, {len(pack) / MB:.2f} MB")
        print(f"v0 push of the whole seed at once: {whole / MB:.1f} MB request, {whole_verdict}")
        print(
            f"v0 push fits a Lambda ({MAX_ANSWER_BYTES / MB:.1f} MB of msgpack) up to "
            f"{per_push} commits of 700 files"
        )
        print(
            f"v0 push of the seed in {pushes} increments of {per_push}: {v0_s:.2f} s, "
            f"{sent / MB:.1f} MB sent in {len(client.calls)} calls (largest {largest / MB:.2f} MB)"
        )
        print(f"v0 clone answer fits up to {clone_commits} commits; whole seed: {clone_verdict}")
        print(
            f"v0 fetch of the last 5 commits: {fetch_s:.2f} s, "
            f"{len(msgpack.packb(increment, use_bin_type=True)) / 1000:.0f} kB"
        )
        print(f"{'PASS' if ok and same else 'MISS'} the seed reached the server over v0")
        return ok and same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=SEED.commits)
    args = parser.parse_args(argv)
    return 0 if run(Workload(commits=args.commits)) else 1


if __name__ == "__main__":
    sys.exit(main())
