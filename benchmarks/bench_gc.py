"""Benchmark of garbage collection: one repository with 1,000 failed pushes.

Starts moto in-process, provisions the stack from template.yaml, pushes a base history (the
real IngestService), then 1,000 pushes of one commit each on main's head that lose their ref
move, as when another push moves the branch first: each writes its pack item, index, snapshot
and commit, then fails with ``ref_conflict`` (the compare-and-swap is made to fail; the state is
the one a lost race leaves). Then one pass in dry run, one that deletes, and one more (nothing
left to delete), each timed with the S3 and DynamoDB requests the server's clients made; then a
clone's pack is built and verified to hold the whole base history.

Run: ``python benchmarks/bench_gc.py [--failed N]``. Prints the figures against the targets and
exits with status 1 when a target is missed or anything reachable was lost.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

from bench_ingest import fresh_stack, use_in_process_moto, verdict
from moto import mock_aws

from muse_cloud.domain.identities import Caller
from muse_cloud.domain.pushes import PushRequest
from muse_cloud.services.gc import Doomed, GcReport
from muse_cloud.storage import layout
from muse_cloud.storage.layout import UploadKey
from muse_cloud.storage.refs import RefStore
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.server import services
from muse_core.mpack import build_mpack, encode_mpack, mpack_key
from muse_core.refs import write_branch_ref
from muse_core.verify import EmptyReceiver, verify_mpack

BASE = Workload(commits=100, files=200, changed_per_commit=5)
FAILED_PUSHES = 1000
# Targets: a pass over 1,000 failed pushes within a minute on moto here, and a bounded number
# of requests for each (reading its pack's records, deleting its items and bytes in batches)
# beside those of the pass itself (listings, the marking of the base history).
PASS_TARGET_S = 60.0
REQUESTS_PER_FAILED_PUSH = 2.0
FIXED_REQUESTS = 100
OWNER = Caller("bench", "sha256:" + "0b" * 32)


def _packs(root: Path, failed: int) -> tuple[bytes, list[bytes], str]:
    """The base history's pack, and one pack per failed push: a commit on the base head."""
    base_head = generate_history(root, BASE)[-1]
    base = encode_mpack(build_mpack(root, {"main": base_head}))
    packs = []
    for n in range(failed):
        branch = f"failed/{n}"
        write_branch_ref(root, branch, base_head)
        start = BASE.commits + n
        head = generate_history(root, Workload(1, BASE.files, 2), branch=branch, start=start)[-1]
        packs.append(encode_mpack(build_mpack(root, {"main": head}, [base_head])))
    return base, packs, base_head


def _push(repo_id: str, data: bytes) -> str:
    upload = UploadKey(repo_id, mpack_key(data).removeprefix("sha256:"))
    services().stores.packs.put_upload(upload, data)
    record = services().ingest.ingest(upload, PushRequest("main"))
    return record.error.code if record.error else record.state


def _clone_holds_the_base(repo_id: str) -> int:
    """Build a clone's pack and verify it whole: the commits it carries."""
    fetched = services().fetch.fetch(OWNER, "bench", "gc", [], [])
    assert fetched.mpack_key is not None, "built in the call: no time bound in-process"
    key = layout.fetch_pack(repo_id, fetched.mpack_key.removeprefix("sha256:"))
    data = services().stores.bucket.get(key)
    assert data is not None, key
    return len(verify_mpack(data, EmptyReceiver()).commits)


def _files(report: GcReport) -> list[Doomed]:
    return [f for r in report.repositories for f in r.files]


def _row(name: str, report: GcReport) -> str:
    requests = report.dynamodb_requests + report.s3_requests
    return (
        f"{name:<34} {report.seconds:>7.2f} s  {requests:>6,} requests "
        f"({report.dynamodb_requests:,} DynamoDB, {report.s3_requests:,} S3)  "
        f"{report.items:>6,} items  {report.bytes:>11,} bytes"
    )


def run(failed: int) -> bool:
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        base, packs, base_head = _packs(Path(scratch), failed)
        built = time.perf_counter() - started
    use_in_process_moto()
    with mock_aws():
        fresh_stack()
        repo_id = services().stores.repos.create("bench", "gc", "public").repo_id
        started = time.perf_counter()
        # Each push's outcome is also an EMF metric on stdout: keep the report clean.
        with contextlib.redirect_stdout(io.StringIO()):
            assert _push(repo_id, base) == "ok"
            with mock.patch.object(RefStore, "compare_and_swap", lambda *_: False):
                outcomes = [_push(repo_id, data) for data in packs]
        pushed = time.perf_counter() - started
        gc = services().gc
        dry = gc.run(dry_run=True, grace_seconds=0)
        real = gc.run(grace_seconds=0)
        again = gc.run(grace_seconds=0)
        cloned = _clone_holds_the_base(repo_id)
        heads = services().stores.refs.heads(repo_id)

    print(
        f"repository: a base of {BASE.commits} commits x {BASE.files} files, then {failed:,} "
        f"failed pushes of 1 commit, 2 changed files ({built:.1f} s to build the packs, "
        f"{pushed:.1f} s to push them)"
    )
    print(f"failed pushes: {outcomes.count('ref_conflict'):,} of {failed:,} ref_conflict")
    print()
    for name, report in (("dry run", dry), ("pass", real), ("pass again", again)):
        print(_row(name, report))
    (sweep,) = real.repositories
    print(
        f"deleted: {sweep.commits:,} commits, {sweep.snapshots:,} snapshots, "
        f"{sweep.packs:,} pack items, {len(sweep.files):,} files"
    )
    print()
    requests = real.dynamodb_requests + real.s3_requests
    budget = REQUESTS_PER_FAILED_PUSH * failed + FIXED_REQUESTS
    checks = [
        ("every push failed after writing", outcomes.count("ref_conflict") == failed),
        ("the dry run lists what the pass deletes", dry.repositories == real.repositories),
        (
            "the pass deletes every failed push",
            (sweep.commits, sweep.snapshots, sweep.packs) == (failed, failed, failed),
        ),
        (
            "a second pass finds only the MIDX the first replaced",
            again.items == 0 and [f.key.split("/")[2] for f in _files(again)] == ["midx"],
        ),
        ("the clone holds the whole base", cloned == BASE.commits and heads == {"main": base_head}),
        (f"pass <= {PASS_TARGET_S:.0f} s ({real.seconds:.1f} s)", real.seconds <= PASS_TARGET_S),
        (
            f"requests <= {REQUESTS_PER_FAILED_PUSH:.0f} per failed push + {FIXED_REQUESTS} "
            f"({requests:,} of {budget:,.0f})",
            requests <= budget,
        ),
    ]
    width = max(len(name) for name, _ in checks)
    for name, passed in checks:
        print(f"{name:<{width}}  {verdict(passed)}")
    return all(passed for _, passed in checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--failed", type=int, default=FAILED_PUSHES, help="failed pushes")
    args = parser.parse_args(argv)
    return 0 if run(args.failed) else 1


if __name__ == "__main__":
    sys.exit(main())
