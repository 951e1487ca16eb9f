"""Big histories end to end: ``muse-cloud push`` of a long history and of a wide one to a local
stack, then a clone checked against the source, beside ``git push`` of the same history.

Issue 12: no history that git pushes is refused for its shape. The two shapes are 1,031 commits
of 50,000 files and 100,000 commits of 1,000 files (5 files changed per commit, 512-byte blobs);
the client cuts a push into as many packs as the server's limits need (one, at the default
limits, for both; ``--pack-commits`` makes the server take fewer commits a pack, so the split
runs at full size too).

For each shape: the history generated with the project's generator, the push (``muse-cloud
push`` in its own process, against ``LocalStack`` in this one: moto, the API and the unpack
workers), the branch head and the counts the server reports, the clone compared file by file
with the source (``compare_repos``), and ``git push`` of the same history (written into git with
``git fast-import``, as ``bench_vs_git.py`` does) to a fresh bare repository. Peak RSS: the
push's and the clone's own process, git's, and the stack (this process and its workers).

Targets: every push lands whole (the head, every commit, snapshot and object) in under 15
minutes, and the clone matches the source.

Run: ``python benchmarks/bench_big_histories.py [--shapes 1031x50000,100000x1000]
[--pack-commits N] [--no-clone] [--no-git]``. Linux only (/proc, GNU time).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_dev_session import memory_mib
from bench_vs_git import bare_repository, cli, fast_import_stream, timed

from muse_cloud_cli.client import MuseCloudClient
from muse_cloud_cli.compare import stored_ids
from muse_cloud_cli.signer import KeyFile
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.local_stack import LocalStack
from muse_core.limits import Limits
from muse_core.mpack import build_mpack
from muse_core.refs import list_branches

MIB = 1024 * 1024
PUSH_TARGET_SECONDS = 15 * 60
SHAPES = "1031x50000,100000x1000"


@dataclass(frozen=True)
class Figures:
    shape: str
    generate_s: float
    push_s: float
    packs: int
    push_rss_mib: float
    stack_peak_mib: float
    landed: bool
    clone_s: float | None = None
    clone_rss_mib: float | None = None
    clone_matches: bool | None = None
    git_push_s: float | None = None
    git_push_rss_mib: float | None = None

    @property
    def passed(self) -> bool:
        return self.landed and self.push_s < PUSH_TARGET_SECONDS and self.clone_matches is not False


def run_shape(args: argparse.Namespace, workload: Workload, scratch: Path) -> Figures:
    shape = f"{workload.commits:,} commits x {workload.files:,} files"
    root = scratch / "muse"
    started = time.perf_counter()
    ids = generate_history(root, workload)
    generated = time.perf_counter() - started
    print(f"{shape}: generated in {generated:.0f} s", flush=True)
    limits = Limits(max_commits=args.pack_commits) if args.pack_commits else None
    with LocalStack(scratch / "stack", pack_limits=limits) as stack:
        admin = str(stack.admin_key_path)
        url = f"{stack.api_url}/admin/big"
        with MuseCloudClient(stack.api_url, KeyFile.load(stack.admin_key_path)) as client:
            client.create_repo("admin", "big")
            push = timed(
                cli("push", "-C", str(root), "--remote", url, "--identity", admin, "--json")
            )
            answer = json.loads(push.extra["stdout"])
            heads = client.refs("admin", "big")["branch_heads"]
        landed = heads == {"main": ids[-1]}
        print(
            f"{shape}: pushed in {push.seconds:.0f} s, {answer['packs']} pack(s), "
            f"head {'as pushed' if landed else f'WRONG: {heads}'}",
            flush=True,
        )
        stack_peak = memory_mib("VmHWM")[1]
        clone = None
        matches = None
        if args.clone:
            copy = scratch / "copy"
            clone = timed(cli("clone", url, str(copy), "--identity", admin))
            matches = same_history(root, copy, workload.commits)
            verdict = "the same as the source" if matches else "NOT the source"
            print(f"{shape}: cloned in {clone.seconds:.0f} s, {verdict}", flush=True)
            shutil.rmtree(copy)
    git = git_push(root, ids, scratch) if args.git else None
    return Figures(
        shape=shape,
        generate_s=generated,
        push_s=push.seconds,
        packs=int(answer["packs"]),
        push_rss_mib=push.maxrss / MIB,
        stack_peak_mib=stack_peak,
        landed=landed,
        clone_s=clone.seconds if clone else None,
        clone_rss_mib=clone.maxrss / MIB if clone else None,
        clone_matches=matches,
        git_push_s=git[0] if git else None,
        git_push_rss_mib=git[1] if git else None,
    )


def same_history(source: Path, copy: Path, commits: int) -> bool:
    """The clone holds the source's branches and exactly its commits, snapshots and objects.
    Their ids are hashes of their content, which the clone verified before writing any: ids
    compared are contents compared (``compare_repos`` would hold every manifest at once)."""
    if list_branches(copy) != list_branches(source):
        return False
    folders = ("commits", "snapshots", "objects")
    counts = {f: len(stored_ids(copy, f)) for f in folders}
    print(f"  the clone: {', '.join(f'{n:,} {f}' for f, n in counts.items())}")
    return counts["commits"] == commits and all(
        stored_ids(copy, f) == stored_ids(source, f) for f in folders
    )


def git_push(root: Path, ids: list[str], scratch: Path) -> tuple[float, float]:
    """The history written into git (fast-import, from the pack's deltas), then ``git push``
    of it to a fresh bare repository: seconds and peak RSS (MiB)."""
    git_root = scratch / "git"
    subprocess.run(["git", "init", "-q", "-b", "main", str(git_root)], check=True)
    importer = subprocess.Popen(
        ["git", "fast-import", "--quiet"], cwd=git_root, stdin=subprocess.PIPE
    )
    assert importer.stdin is not None
    for chunk in fast_import_stream(build_mpack(root, {"main": ids[-1]}), ids):
        importer.stdin.write(chunk)
    importer.stdin.close()
    if importer.wait() != 0:
        raise SystemExit("git fast-import failed")
    bare = bare_repository(scratch / "bare.git")
    pushed = timed(["git", "push", "-q", str(bare), "main"], git_root)
    return pushed.seconds, pushed.maxrss / MIB


def _shape(text: str) -> Workload:
    commits, files = (int(n) for n in text.split("x"))
    return Workload(commits=commits, files=files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=SHAPES, help="COMMITSxFILES,... (default: %(default)s)")
    parser.add_argument("--pack-commits", type=int, help="the stack takes this many commits a pack")
    parser.add_argument("--no-clone", dest="clone", action="store_false")
    parser.add_argument("--no-git", dest="git", action="store_false")
    args = parser.parse_args(argv)
    results: list[Figures] = []
    for text in args.shapes.split(","):
        with tempfile.TemporaryDirectory(prefix="big-") as scratch:
            results.append(run_shape(args, _shape(text), Path(scratch)))
    print()
    for f in results:
        print(
            f"{f.shape}: push {f.push_s:.1f} s in {f.packs} pack(s) (client peak RSS "
            f"{f.push_rss_mib:.0f} MiB; stack peak {f.stack_peak_mib:.0f} MiB with its workers)"
            + (f", clone {f.clone_s:.1f} s ({f.clone_rss_mib:.0f} MiB)" if f.clone_s else "")
            + (
                f"; git push {f.git_push_s:.1f} s ({f.git_push_rss_mib:.0f} MiB)"
                if f.git_push_s
                else ""
            )
            + f"; generated in {f.generate_s:.0f} s  {'PASS' if f.passed else 'MISS'}"
        )
    passed = all(f.passed for f in results)
    print("all targets met" if passed else "MISS")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
