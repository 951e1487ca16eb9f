"""Muse Cloud beside git on the same machine, in one run, on the same history.

Generates the workload (700 files, 5 changed per commit, 512-byte blobs) once with the project's
generator, at the largest history asked for, and writes the same history into a git repository
with ``git fast-import``; a shorter history is a prefix of it (a branch at that commit). Then
times, interleaving Muse Cloud and git run by run, and reports the median:

- ingestion inside the handler (S3 event -> SQS -> unpack handler on in-process moto, each run
  in a fresh process) beside ``git push`` to a fresh bare repository, at each history size, with
  the peak memory of both;
- ``muse-cloud push`` over HTTP to ``muse-cloud dev`` beside ``git push``, on the seed history;
- ``muse-cloud clone`` beside ``git clone`` of a ``file://`` URL (git's pack protocol, not its
  hard-linking local copy).

Prints one table (both figures, the ratio, the target, PASS/MISS), writes it as JSON and a PNG
chart, and exits with status 1 when a target is missed.

Run: ``python benchmarks/bench_vs_git.py [--sizes 1031,5000,20000] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from muse_cloud_cli.workload import SEED, Workload, generate_history
from muse_cloud_dev.server import answered
from muse_core.mpack import build_mpack, encode_mpack
from muse_core.refs import write_branch_ref

MIB = 1024 * 1024
RATIO_TARGET = 3.0
INGEST_OVER_VERIFY_TARGET = 3.0
MEMORY_HEADROOM_BYTES = 150 * MIB
S3_REQUESTS_TARGET = 10
ITEMS_OVER_HISTORY = 10
HERE = Path(__file__).resolve().parent
MUSE, GIT = "tab:blue", "tab:green"
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Measured:
    """One run: wall seconds, the process's peak RSS, and what else the run reported."""

    seconds: float
    maxrss: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    name: str
    muse: float
    git: float | None
    target: str
    passed: bool | None
    unit: str = "s"

    @property
    def ratio(self) -> float | None:
        return self.muse / self.git if self.git else None


@dataclass(frozen=True)
class History:
    """The generated workload in both formats, and one branch per history size."""

    muse_root: Path
    git_root: Path
    commit_ids: list[str]
    git_shas: list[str]

    def branch(self, commits: int) -> str:
        return f"at-{commits}"


# --- generating the same history for both ---------------------------------------------------------


def generate(scratch: Path, commits: int, sizes: list[int]) -> History:
    """The workload in Muse's format, each size's pack written beside it, and the same history
    in git, imported from the largest pack (its deltas are the changes of each commit)."""
    muse_root = scratch / "muse"
    ids = generate_history(muse_root, Workload(commits=commits))
    for size in sizes:
        write_branch_ref(muse_root, f"at-{size}", ids[size - 1])
    largest = build_mpack(muse_root, [f"at-{sizes[-1]}"])
    (scratch / f"{sizes[-1]}.mpack").write_bytes(encode_mpack(largest))
    for size in sizes[:-1]:
        pack = encode_mpack(build_mpack(muse_root, [f"at-{size}"]))
        (scratch / f"{size}.mpack").write_bytes(pack)
    git_root = scratch / "git"
    _git("init", "-q", "-b", "main", str(git_root))
    marks = scratch / "marks"
    importer = subprocess.Popen(
        ["git", "fast-import", "--quiet", f"--export-marks={marks}"],
        cwd=git_root,
        stdin=subprocess.PIPE,
    )
    assert importer.stdin is not None
    for chunk in fast_import_stream(largest, ids):
        importer.stdin.write(chunk)
    importer.stdin.close()
    if importer.wait() != 0:
        raise SystemExit("git fast-import failed")
    by_mark = dict(line.split() for line in marks.read_text().splitlines())
    shas = [by_mark[f":{n + 1}"] for n in range(len(ids))]
    for size in sizes:
        _git("update-ref", f"refs/heads/at-{size}", shas[size - 1], cwd=git_root)
    return History(muse_root, git_root, ids, shas)


def fast_import_stream(pack: dict[str, Any], commit_ids: list[str]) -> Iterator[bytes]:
    """The pack's history as git fast-import commands: each commit's snapshot delta against its
    parent's (the workload is linear), with the message and time of the Muse commit."""
    commits = {c["commit_id"]: c for c in pack["commits"]}
    snapshots = {s["snapshot_id"]: s for s in pack["snapshots"]}
    contents = {o["object_id"]: o["content"] for o in pack["objects"]}
    previous = None
    for mark, commit_id in enumerate(commit_ids, start=1):
        commit = commits[commit_id]
        snapshot = snapshots[commit["snapshot_id"]]
        if snapshot["parent_snapshot_id"] != previous:
            raise SystemExit(f"snapshot of {commit_id} is not a delta on its parent's")
        previous = snapshot["snapshot_id"]
        when = int(datetime.fromisoformat(commit["committed_at"]).timestamp())
        message = commit["message"].encode()
        lines = [
            b"commit refs/heads/main\n",
            f"mark :{mark}\n".encode(),
            f"committer Muse Bench <bench@example.invalid> {when} +0000\n".encode(),
            f"data {len(message)}\n".encode() + message + b"\n",
        ]
        if mark > 1:
            lines.append(f"from :{mark - 1}\n".encode())
        lines.extend(f"D {path}\n".encode() for path in snapshot["delta_remove"])
        for path, oid in sorted(snapshot["delta_upsert"].items()):
            data = contents[oid]
            lines.append(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")
        yield b"".join(lines)


# --- running and measuring ------------------------------------------------------------------------


def _git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def timed(
    command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> Measured:
    """Wall time and peak RSS (of the process and the children it waited for)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    out = process.stdout.read() if process.stdout else b""
    err = process.stderr.read() if process.stderr else b""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{out.decode()}\n{err.decode()}")
    return Measured(seconds, usage.ru_maxrss * 1024, {"stdout": out.decode()})


def git_push(history: History, size: int, scratch: Path) -> Measured:
    bare = Path(tempfile.mkdtemp(prefix="bare-", dir=scratch))
    _git("init", "-q", "--bare", str(bare))
    branch = history.branch(size)
    measured = timed(
        ["git", "push", "-q", str(bare), f"{branch}:refs/heads/main"], history.git_root
    )
    shutil.rmtree(bare)
    return measured


def ingest_in_child(pack: Path) -> Measured:
    """One ingestion in a fresh process: the handler's figures, and that process's peak RSS."""
    measured = timed([sys.executable, str(Path(__file__)), "--ingest-child", str(pack)])
    report = json.loads(measured.extra["stdout"].strip().splitlines()[-1])
    return Measured(report["seconds"], report["maxrss_after"], report)


def median(runs: list[Measured], pick: Callable[[Measured], float] = lambda m: m.seconds) -> float:
    return statistics.median(pick(m) for m in runs)


def interleaved(runs: int, *steps: Callable[[], Measured]) -> list[list[Measured]]:
    """Each step ``runs`` times, one run of each in turn, so a busy moment hits them alike."""
    results: list[list[Measured]] = [[] for _ in steps]
    for _ in range(runs):
        for results_of, step in zip(results, steps, strict=True):
            results_of.append(step())
    return results


@contextlib.contextmanager
def dev_stack(scratch: Path) -> Iterator[tuple[str, Path]]:
    """``muse-cloud dev`` in its own process: the API URL and the admin key file."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data_dir = scratch / "dev"
    log = (scratch / "dev.log").open("wb")
    server = subprocess.Popen(
        [str(BIN / "muse-cloud"), "dev", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _answers(port) or not (data_dir / "admin.json").exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"muse-cloud dev did not start: {(scratch / 'dev.log').read_text()}"
                )
            time.sleep(0.2)
        yield url, data_dir / "admin.json"
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def cli(*args: str) -> list[str]:
    return [str(BIN / "muse-cloud"), *args]


# --- the benchmark --------------------------------------------------------------------------------


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    scaling: list[dict[str, Any]] = field(default_factory=list)


def run(args: argparse.Namespace, scratch: Path) -> Results:
    sizes = sorted(int(s) for s in args.sizes.split(","))
    seed = sizes[0]
    results = Results()
    started = time.perf_counter()
    history = generate(scratch, sizes[-1], sizes)
    print(
        f"generated {sizes[-1]:,} commits in both formats in {time.perf_counter() - started:.0f} s"
    )

    # Ingestion inside the handler, beside git push, at every size.
    for size in sizes:
        pack = scratch / f"{size}.mpack"
        pack_bytes = pack.stat().st_size
        runs = args.runs if size <= 2 * seed else min(args.runs, 3) if size <= 5 * seed else 1
        muse_runs, git_runs = interleaved(
            runs, partial(ingest_in_child, pack), partial(git_push, history, size, scratch)
        )
        point = {
            "commits": size,
            "pack_bytes": pack_bytes,
            "runs": runs,
            "muse_ingest_s": median(muse_runs),
            "muse_verify_s": median(muse_runs, lambda m: m.extra["verify_ms"] / 1000),
            "muse_ingest_rss_growth": median(
                muse_runs, lambda m: m.extra["maxrss_after"] - m.extra["maxrss_before"]
            ),
            "muse_peak_rss": median(muse_runs, lambda m: m.maxrss),
            "git_push_s": median(git_runs),
            "git_push_peak_rss": median(git_runs, lambda m: m.maxrss),
            "dynamodb_items": muse_runs[0].extra["dynamodb_items"],
            "s3_requests": muse_runs[0].extra["s3_requests"],
            "commits_and_snapshots": muse_runs[0].extra["commits"]
            + muse_runs[0].extra["snapshots"],
        }
        results.scaling.append(point)
        print(f"ingestion of {size:,} commits: {json.dumps(point)}")

    first = results.scaling[0]
    results.rows.append(
        Row(
            f"ingestion in the handler, {seed:,} commits (vs git push)",
            first["muse_ingest_s"],
            first["git_push_s"],
            f"<= {INGEST_OVER_VERIFY_TARGET:.0f}x verify ({first['muse_verify_s']:.2f} s)",
            first["muse_ingest_s"] <= INGEST_OVER_VERIFY_TARGET * first["muse_verify_s"],
        )
    )
    for point in results.scaling:
        items_bound = point["commits_and_snapshots"] + ITEMS_OVER_HISTORY
        for what, unit, bound, target in (
            ("DynamoDB items written", "items", items_bound, "commits + snapshots + 10 = "),
            ("S3 requests", "requests", S3_REQUESTS_TARGET, ""),
        ):
            count = point["dynamodb_items" if unit == "items" else "s3_requests"]
            name = f"{what}, {point['commits']:,} commits"
            results.rows.append(
                Row(name, count, None, f"<= {target}{bound:,}", count <= bound, unit)
            )
        bound = 2 * point["pack_bytes"] + MEMORY_HEADROOM_BYTES
        results.rows.append(
            Row(
                f"ingestion RSS growth, {point['commits']:,} commits (vs git push peak)",
                point["muse_ingest_rss_growth"] / MIB,
                point["git_push_peak_rss"] / MIB,
                f"<= 2x pack + 150 MiB = {bound / MIB:.0f} MiB",
                point["muse_ingest_rss_growth"] <= bound,
                unit="MiB",
            )
        )
    for point in results.scaling[1:]:
        grows = point["commits"] / first["commits"]
        results.rows.append(
            Row(
                f"ingestion in the handler, {point['commits']:,} commits (vs git push)",
                point["muse_ingest_s"],
                point["git_push_s"],
                f"<= {grows:.1f}x the {seed:,}-commit time (linear)",
                point["muse_ingest_s"] <= grows * first["muse_ingest_s"],
            )
        )

    # End to end over HTTP, and clone, on the seed history.
    with dev_stack(scratch) as (url, admin):
        identity = ["--identity", str(admin)]
        pushed: list[str] = []

        def muse_push() -> Measured:
            name = f"seed-{len(pushed)}"
            subprocess.run(
                cli("repo", "create", f"admin/{name}", "--server", url, *identity),
                check=True,
                stdout=subprocess.DEVNULL,
            )
            pushed.append(name)
            return timed(
                cli(
                    "push", str(history.muse_root), "--remote", f"{url}/admin/{name}",
                    "--branch", history.branch(seed), *identity,
                )
            )  # fmt: skip

        muse_runs, git_runs = interleaved(
            args.runs, muse_push, partial(git_push, history, seed, scratch)
        )
        results.rows.append(
            Row(
                f"push end to end over HTTP, {seed:,} commits",
                median(muse_runs),
                median(git_runs),
                f"<= {RATIO_TARGET:.0f}x git push",
                median(muse_runs) <= RATIO_TARGET * median(git_runs),
            )
        )

        bare = scratch / "clone-source.git"
        _git("init", "-q", "--bare", str(bare))
        _git(
            "push", "-q", str(bare), f"{history.branch(seed)}:refs/heads/main", cwd=history.git_root
        )
        clones = scratch / "clones"
        clones.mkdir()

        def muse_clone() -> Measured:
            dest = Path(tempfile.mkdtemp(prefix="muse-", dir=clones))
            shutil.rmtree(dest)
            measured = timed(cli("clone", f"{url}/admin/{pushed[0]}", str(dest), *identity))
            shutil.rmtree(dest)
            return measured

        def git_clone() -> Measured:
            dest = Path(tempfile.mkdtemp(prefix="git-", dir=clones))
            shutil.rmtree(dest)
            measured = timed(["git", "clone", "-q", f"file://{bare}", str(dest)])
            shutil.rmtree(dest)
            return measured

        muse_runs, git_runs = interleaved(args.runs, muse_clone, git_clone)
        results.rows.append(
            Row(
                f"clone, {seed:,} commits",
                median(muse_runs),
                median(git_runs),
                f"<= {RATIO_TARGET:.0f}x git clone",
                median(muse_runs) <= RATIO_TARGET * median(git_runs),
            )
        )
    return results


# --- reporting ------------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    header = ("workload", "Muse Cloud", "git", "ratio", "target", "")
    lines = [header]
    for row in rows:
        lines.append(
            (
                row.name,
                _figure(row.muse, row.unit),
                _figure(row.git, row.unit) if row.git is not None else "",
                f"{row.ratio:.1f}x" if row.ratio is not None else "",
                row.target,
                "" if row.passed is None else ("PASS" if row.passed else "MISS"),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def _figure(value: float, unit: str) -> str:
    if unit in ("items", "requests"):
        return f"{value:,.0f}"
    return f"{value:.2f} {unit}" if unit == "s" else f"{value:.0f} {unit}"


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    git = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "git": git.stdout.strip(),
    }


def write_chart(scaling: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    commits = [p["commits"] for p in scaling]
    figure, (times, memory) = plt.subplots(1, 2, figsize=(11, 4.2))
    lines = [
        (times, "muse_ingest_s", 1, "o-", MUSE, "Muse Cloud ingestion"),
        (times, "muse_verify_s", 1, "o:", MUSE, "of which verification"),
        (times, "git_push_s", 1, "s-", GIT, "git push (bare repo)"),
        (memory, "muse_ingest_rss_growth", MIB, "o-", MUSE, "Muse Cloud ingestion (RSS growth)"),
        (memory, "git_push_peak_rss", MIB, "s-", GIT, "git push (peak RSS)"),
    ]
    for axes, key, scale, style, color, label in lines:
        axes.plot(commits, [p[key] / scale for p in scaling], style, color=color, label=label)
    memory.plot(
        commits,
        [(2 * p["pack_bytes"] + MEMORY_HEADROOM_BYTES) / MIB for p in scaling],
        "k--",
        label="target: 2x pack + 150 MiB",
    )
    times.set(xlabel="commits (700 files, 5 changed each)", ylabel="seconds", title="time")
    memory.set(xlabel="commits (700 files, 5 changed each)", ylabel="MiB", title="peak memory")
    for axes in (times, memory):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle("Muse Cloud beside git on the same machine")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --- the ingestion child --------------------------------------------------------------------------


def ingest_child(pack: Path) -> int:
    """One ingestion on in-process moto, through bench_ingest's event path; one JSON line."""
    from bench_ingest import drained_stack, ingest, use_in_process_moto
    from moto import mock_aws

    data = pack.read_bytes()
    use_in_process_moto()
    with mock_aws():
        stack = drained_stack()
        measured = ingest(stack, data, "bench", trace=False)
    result = answered(measured.record)
    if measured.record.state != "ok":
        raise SystemExit(f"ingestion failed: {answered(measured.record)}")
    print(
        json.dumps(
            {
                "seconds": measured.seconds,
                "verify_ms": result["verify_ms"],
                "write_ms": result["write_ms"],
                "total_ms": result["total_ms"],
                "commits": result["commits_written"],
                "snapshots": result["snapshots_written"],
                "maxrss_before": measured.maxrss_before,
                "maxrss_after": measured.maxrss_after,
                "s3_requests": measured.s3.total,
                "dynamodb_requests": measured.dynamodb.total,
                "dynamodb_items": measured.dynamodb.items_written[stack.names.table],
            }
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default=f"{SEED.commits},5000,20000", help="history sizes")
    parser.add_argument(
        "--runs", type=int, default=5, help="runs per figure (at most 3 up to 5x seed, then 1)"
    )
    parser.add_argument("--out", default=str(HERE / "results"), help="where JSON and PNG go")
    parser.add_argument("--ingest-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ingest_child:
        return ingest_child(Path(args.ingest_child))
    if shutil.which("git") is None:
        raise SystemExit("git is needed beside Muse Cloud")

    with tempfile.TemporaryDirectory(prefix="bench-vs-git-") as tmp:
        results = run(args, Path(tmp))
    print()
    print_table(results.rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": machine(),
        "rows": [{**asdict(r), "ratio": r.ratio} for r in results.rows],
        "scaling": results.scaling,
    }
    (out / "bench_vs_git.json").write_text(json.dumps(report, indent=2) + "\n")
    write_chart(results.scaling, out / "bench_vs_git.png")
    print(f"\nwrote {out / 'bench_vs_git.json'} and {out / 'bench_vs_git.png'}")
    return 0 if all(r.passed is not False for r in results.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
