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
  hard-linking local copy), the first clone (its fetch pack built) and the next ones (reused);
- the everyday push: one commit on top of the seed (``muse-cloud push`` beside ``git push``), and
  a ``fetch`` of that one new commit into a clone (beside ``git fetch``);
- 200 sequential one-commit pushes to one repository holding the seed, server side (the unpack
  handler, as the ingestion rows), beside 200 ``git push`` es, interleaved one by one;
- the import time of each handler module in a fresh interpreter, and how many botocore copies
  the deployed functions carry (the runtime's, and any their requirements bundle).

Server-side rows run on in-process moto as the local stack runs it (``keep_moto_fast``: a Query
reads its partition, item actions are answered without moto's shape-walking serializer).

Prints one table (both figures, the ratio, the target, PASS/MISS), writes it as JSON and a PNG
chart, and exits with status 1 when a target is missed.

Run: ``python benchmarks/bench_vs_git.py [--sizes 1031,5000,20000] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
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
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import requires
from itertools import pairwise
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from muse_cloud_cli.workload import SEED, Workload, generate_history
from muse_cloud_dev.server import API_HANDLER, UNPACK_HANDLER, answered
from muse_core.commits import CommitRecord
from muse_core.mpack import LocalHistory, build_mpack, build_pack, encode_mpack
from muse_core.refs import write_branch_ref

MIB = 1024 * 1024
RATIO_TARGET = 3.0
INGEST_OVER_VERIFY_TARGET = 3.0
MEMORY_HEADROOM_BYTES = 150 * MIB
S3_REQUESTS_TARGET = 10
ITEMS_OVER_HISTORY = 10
SEQUENTIAL_PUSHES = 200
SEQUENTIAL_TARGET_S = 10.0
IMPORT_TARGET_MS = 300.0
IMPORT_RUNS = 7
HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE.parent / "functions" / "requirements.txt"
MUSE, GIT = "tab:blue", "tab:green"
BIN = Path(sys.executable).parent
GNU_TIME = shutil.which("time") or "/usr/bin/time"


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
    in git, imported from a pack of all of it (its deltas are the changes of each commit)."""
    muse_root = scratch / "muse"
    ids = generate_history(muse_root, Workload(commits=commits))
    for size in sizes:
        write_branch_ref(muse_root, f"at-{size}", ids[size - 1])
    everything = build_mpack(muse_root, {"main": ids[-1]})
    for size in sizes:
        # Pushed as main, as git's push of it is: a first push to another branch also makes
        # it the repository's default (one more item written).
        prefix = {"main": ids[size - 1]}
        pack = everything if size == commits else build_mpack(muse_root, prefix)
        (scratch / f"{size}.mpack").write_bytes(encode_mpack(pack))
    git_root = scratch / "git"
    _git("init", "-q", "-b", "main", str(git_root))
    marks = scratch / "marks"
    importer = subprocess.Popen(
        ["git", "fast-import", "--quiet", f"--export-marks={marks}"],
        cwd=git_root,
        stdin=subprocess.PIPE,
    )
    assert importer.stdin is not None
    for chunk in fast_import_stream(everything, ids):
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


def bare_repository(path: Path) -> Path:
    """A bare repository whose HEAD is main, so that a clone of it checks main out (with the
    default HEAD, refs/heads/master, ``git clone`` wrote no working files at all)."""
    _git("init", "-q", "--bare", "-b", "main", str(path))
    return path


def timed(
    command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> Measured:
    """Wall time and peak RSS (of the process and the children it waited for), the RSS as GNU
    time measures it from a small process of its own: a child of this one starts with this
    process's high-water mark (exec keeps the larger of the two), and after generating the
    20,000-commit history that was 456 MiB for every command, git's included."""
    with tempfile.NamedTemporaryFile("r") as report:
        started = time.perf_counter()
        done = subprocess.run(
            [GNU_TIME, "-f", "%M", "-o", report.name, *command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
        kib = int(report.read().split()[-1])
    return Measured(seconds, kib * 1024, {"stdout": done.stdout})


def git_push(history: History, size: int, scratch: Path) -> Measured:
    bare = bare_repository(Path(tempfile.mkdtemp(prefix="bare-", dir=scratch)))
    branch = history.branch(size)
    measured = timed(
        ["git", "push", "-q", str(bare), f"{branch}:refs/heads/main"], history.git_root
    )
    shutil.rmtree(bare)
    return measured


def import_seconds(module: str, deployed: Path) -> Measured:
    """Importing ``module`` in a fresh interpreter, as a sandbox's cold start does, from the
    function's and the layer's code as ``sam build`` lays them out (``deployed_code``)."""
    code = (
        "import time; started = time.perf_counter(); import " + module + "; "
        "print(time.perf_counter() - started)"
    )
    path = os.pathsep.join(str(deployed / part) for part in ("function", "layer/python"))
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPYCACHEPREFIX"}
    # Lambda's code directory is read-only: only the bytecode shipped with the code is used.
    environment.update(PYTHONPATH=path, PYTHONDONTWRITEBYTECODE="1")
    measured = timed([sys.executable, "-c", code], env=environment)
    return Measured(float(measured.extra["stdout"]), measured.maxrss)


def deployed_code(scratch: Path) -> Path:
    """The functions' and the layer's own code built by their Makefiles' ``sources`` targets,
    which ``sam build`` runs (bytecode compiled, as Lambda cannot write it), with this
    interpreter; their requirements are this environment's, installed at the same versions."""
    deployed = scratch / "deployed"
    for directory, artifacts in (("functions", "function"), ("layers/muse_core", "layer")):
        (deployed / artifacts).mkdir(parents=True)
        subprocess.run(
            ["make", "--silent", "-C", str(HERE.parent / directory), "sources"],
            env={
                **os.environ,
                "ARTIFACTS_DIR": str(deployed / artifacts),
                "PYTHON": sys.executable,
            },
            check=True,
        )
    return deployed


def bundled_botocores(requirements: Path = REQUIREMENTS) -> int:
    """botocore copies a deployed function carries: the Lambda runtime's own, and one more if
    anything its requirements install (resolved through this environment's installed metadata,
    which pins the same versions) needs botocore."""
    pending = [Requirement(line) for line in _requirement_lines(requirements)]
    installed: set[str] = set()
    while pending:
        wanted = pending.pop()
        name = canonicalize_name(wanted.name)
        if name in installed:
            continue
        installed.add(name)
        for line in requires(name) or []:
            needed = Requirement(line)
            extras = [{"extra": e} for e in wanted.extras] or [{"extra": ""}]
            if needed.marker is None or any(needed.marker.evaluate(e) for e in extras):
                pending.append(needed)
    return 1 + ("botocore" in installed)


def _requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


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
    sequential: dict[str, Any] = field(default_factory=dict)


def run(args: argparse.Namespace, scratch: Path) -> Results:
    # Every Python this starts caches its bytecode at its first run, as a user's Python does:
    # this machine sets PYTHONDONTWRITEBYTECODE, which made each CLI run compile the client
    # again. (The functions ship theirs: ``deployed_code``.)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(scratch / "bytecode")
    sizes = sorted(int(s) for s in args.sizes.split(","))
    seed = sizes[0]
    results = Results()
    started = time.perf_counter()
    # Past the seed: one commit for each everyday push, and the sequential pushes.
    commits = max(sizes[-1], seed + args.runs + SEQUENTIAL_PUSHES)
    history = generate(scratch, commits, sizes)
    print(f"generated {commits:,} commits in both formats in {time.perf_counter() - started:.0f} s")

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

    over_http(args, history, seed, scratch, results)
    sequential_pushes(history, seed, scratch, results)
    cold_start(args, scratch, results)
    return results


def over_http(
    args: argparse.Namespace, history: History, seed: int, scratch: Path, results: Results
) -> None:
    """Push, clone, the everyday push and a fetch, each beside git, on one ``muse-cloud dev``."""
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
                    "push", "-C", str(history.muse_root), "--remote", f"{url}/admin/{name}",
                    "--branch", history.branch(seed), *identity,
                )
            )  # fmt: skip

        muse_runs, git_runs = interleaved(
            args.runs, muse_push, partial(git_push, history, seed, scratch)
        )
        results.rows.append(
            _beside_git(f"push end to end over HTTP, {seed:,} commits", muse_runs, git_runs, "push")
        )

        bare = bare_repository(scratch / "clone-source.git")
        _git(
            "push", "-q", str(bare), f"{history.branch(seed)}:refs/heads/main", cwd=history.git_root
        )
        clones = scratch / "clones"
        clones.mkdir()
        remote = f"{url}/admin/{pushed[0]}"

        # Each clone is kept until the benchmark ends. Deleting one just before the next clone
        # timed ext4 instead: a new inode is looked for past the ones deleted in the last minute
        # (or five), each read from the inode table, and a Muse clone creates 8,600 files
        # (perf: most of a 2.5 s clone was ext4_create's recently_deleted; 0.6-0.7 s without).
        def muse_clone() -> Measured:
            dest = Path(tempfile.mkdtemp(prefix="muse-", dir=clones))
            dest.rmdir()
            return timed(cli("clone", remote, str(dest), *identity))

        def git_clone() -> Measured:
            dest = Path(tempfile.mkdtemp(prefix="git-", dir=clones))
            dest.rmdir()
            return timed(["git", "clone", "-q", f"file://{bare}", str(dest)])

        (first_muse,), (first_git,) = interleaved(1, muse_clone, git_clone)
        results.rows.append(
            _beside_git(
                f"clone, {seed:,} commits, first (the server builds the fetch pack)",
                [first_muse],
                [first_git],
                "clone",
            )
        )
        muse_runs, git_runs = interleaved(args.runs, muse_clone, git_clone)
        results.rows.append(
            _beside_git(
                f"clone, {seed:,} commits, again (the fetch pack is reused)",
                muse_runs,
                git_runs,
                "clone",
            )
        )
        everyday(args, history, seed, identity, remote, bare, clones, results)


def everyday(
    args: argparse.Namespace,
    history: History,
    seed: int,
    identity: list[str],
    remote: str,
    bare: Path,
    clones: Path,
    results: Results,
) -> None:
    """One new commit on top of the seed, pushed, then fetched into a clone: each run the next
    commit of the history, on branch ``everyday`` of both servers."""
    muse_clone, git_clone = clones / "muse-fetching", clones / "git-fetching"
    timed(cli("clone", remote, str(muse_clone), *identity))
    _git("clone", "-q", f"file://{bare}", str(git_clone))
    pushed: list[int] = []

    def muse_push() -> Measured:
        commit = seed + len(pushed)
        pushed.append(commit)
        write_branch_ref(history.muse_root, "everyday", history.commit_ids[commit])
        return timed(
            cli(
                "push", "-C", str(history.muse_root), "--remote", remote, "--branch", "everyday",
                *identity,
            )
        )  # fmt: skip

    def git_push_one() -> Measured:
        sha = history.git_shas[pushed[-1]]
        push = ["git", "push", "-q", str(bare), f"{sha}:refs/heads/everyday"]
        return timed(push, history.git_root)

    def muse_fetch() -> Measured:
        return timed(cli("fetch", "-C", str(muse_clone), *identity))

    def git_fetch() -> Measured:
        return timed(["git", "fetch", "-q"], git_clone)

    muse_pushes, git_pushes, muse_fetches, git_fetches = interleaved(
        args.runs, muse_push, git_push_one, muse_fetch, git_fetch
    )
    for measured in muse_fetches:
        if "received 1 commit " not in measured.extra["stdout"]:
            raise SystemExit(f"the fetch did not bring one commit: {measured.extra['stdout']}")
    results.rows.append(
        _beside_git("one-commit push on top of the seed", muse_pushes, git_pushes, "push")
    )
    results.rows.append(_beside_git("fetch of one new commit", muse_fetches, git_fetches, "fetch"))


def _beside_git(name: str, muse: list[Measured], git: list[Measured], command: str) -> Row:
    return Row(
        name,
        median(muse),
        median(git),
        f"<= {RATIO_TARGET:.0f}x git {command}",
        median(muse) <= RATIO_TARGET * median(git),
    )


def sequential_pushes(history: History, seed: int, scratch: Path, results: Results) -> None:
    """200 one-commit pushes in a row to the repository holding the seed: the unpack handler on
    each (in a child process, as the ingestion rows), interleaved with a ``git push`` of the
    same commit to a bare repository holding the same seed."""
    bare = bare_repository(scratch / "sequential.git")
    _git("push", "-q", str(bare), f"{history.branch(seed)}:refs/heads/main", cwd=history.git_root)
    spec = scratch / "sequential.json"
    spec.write_text(
        json.dumps(
            {
                "muse_root": str(history.muse_root),
                "seed_pack": str(scratch / f"{seed}.mpack"),
                "commit_ids": history.commit_ids[seed - 1 : seed + SEQUENTIAL_PUSHES],
                "git_root": str(history.git_root),
                "git_bare": str(bare),
                "git_shas": history.git_shas[seed : seed + SEQUENTIAL_PUSHES],
            }
        )
    )
    measured = timed([sys.executable, str(Path(__file__)), "--sequential-child", str(spec)])
    report = json.loads(measured.extra["stdout"].strip().splitlines()[-1])
    muse, git = sum(report["muse_seconds"]), sum(report["git_seconds"])
    results.sequential = report
    results.rows.append(
        Row(
            f"{SEQUENTIAL_PUSHES} sequential one-commit pushes, server side (vs {SEQUENTIAL_PUSHES}"
            " git pushes)",
            muse,
            git,
            f"< {SEQUENTIAL_TARGET_S:.0f} s and <= {RATIO_TARGET:.0f}x git",
            muse < SEQUENTIAL_TARGET_S and muse <= RATIO_TARGET * git,
        )
    )


def cold_start(args: argparse.Namespace, scratch: Path, results: Results) -> None:
    """Each handler module imported in a fresh interpreter (median), and the botocore copies."""
    modules = [target.partition(":")[0] for target in (API_HANDLER, UNPACK_HANDLER)]
    deployed = deployed_code(scratch)
    runs = interleaved(
        max(args.runs, IMPORT_RUNS), *(partial(import_seconds, m, deployed) for m in modules)
    )
    for module, measured in zip(modules, runs, strict=True):
        milliseconds = 1000 * median(measured)
        results.rows.append(
            Row(
                f"import of {module} (fresh interpreter)",
                milliseconds,
                None,
                f"< {IMPORT_TARGET_MS:.0f} ms",
                milliseconds < IMPORT_TARGET_MS,
                unit="ms",
            )
        )
    copies = bundled_botocores()
    results.rows.append(
        Row(
            "botocore copies in a deployed function (the runtime's + bundled)",
            copies,
            None,
            "1",
            copies == 1,
            unit="copies",
        )
    )


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
    if unit in ("items", "requests", "copies"):
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


class _RememberedHistory(LocalHistory):
    """The local repository, each commit read from disk once: 200 packs of one commit each
    walk the same held history."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self._read: dict[str, CommitRecord] = {}

    def commits(self, commit_ids: Collection[str]) -> dict[str, CommitRecord]:
        unread = [c for c in commit_ids if c not in self._read]
        self._read.update(super().commits(unread))
        return {c: self._read[c] for c in commit_ids if c in self._read}


def sequential_child(spec_path: Path) -> int:
    """The seed ingested, then one pack per commit, each through the event path into the unpack
    handler and followed by a ``git push`` of the same commit; one JSON line of both series."""
    import boto3
    from bench_ingest import REGION, drained_stack, use_in_process_moto
    from moto import mock_aws

    from muse_cloud.handlers.unpack import lambda_handler
    from muse_cloud.storage.layout import UploadKey
    from muse_cloud_dev.event_source import SqsEventSource
    from muse_cloud_dev.server import stores
    from muse_core.mpack import mpack_key

    spec = json.loads(spec_path.read_text())
    ids: list[str] = spec["commit_ids"]  # the seed's head, then one commit per push
    history = _RememberedHistory(Path(spec["muse_root"]))
    packs = [
        encode_mpack(build_pack(history, {"main": commit}, [parent]))
        for parent, commit in pairwise(ids)
    ]
    use_in_process_moto()
    with mock_aws():
        stack = drained_stack()
        repo_id = stores().repos.create("bench", "sequential", "public").repo_id
        upload = boto3.client("s3", region_name=REGION)
        source = SqsEventSource(
            boto3.client("sqs", region_name=REGION),
            stack.queue_url,
            lambda_handler,
            report_batch_item_failures=stack.report_batch_item_failures,
        )

        def ingest(data: bytes) -> float:
            key = UploadKey(repo_id, mpack_key(data).removeprefix("sha256:"))
            upload.put_object(Bucket=stack.names.bucket, Key=key.s3_key, Body=data)
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                source.drain()
            seconds = time.perf_counter() - started
            record = stores().pushes.get(repo_id, key.mpack_hex)
            if record is None or record.state != "ok":
                raise SystemExit(f"push {key.mpack_hex} did not end ok")
            return seconds

        ingest(Path(spec["seed_pack"]).read_bytes())
        muse, git = [], []
        for data, sha in zip(packs, spec["git_shas"], strict=True):
            muse.append(ingest(data))
            push = ["git", "push", "-q", spec["git_bare"], f"{sha}:refs/heads/main"]
            git.append(timed(push, Path(spec["git_root"])).seconds)
        if stores().refs.heads(repo_id).get("main") != ids[-1]:
            raise SystemExit("main is not at the last commit pushed")
    print(json.dumps({"muse_seconds": muse, "git_seconds": git}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default=f"{SEED.commits},5000,20000", help="history sizes")
    parser.add_argument(
        "--runs", type=int, default=5, help="runs per figure (at most 3 up to 5x seed, then 1)"
    )
    parser.add_argument("--out", default=str(HERE / "results"), help="where JSON and PNG go")
    parser.add_argument("--ingest-child", help=argparse.SUPPRESS)
    parser.add_argument("--sequential-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ingest_child:
        return ingest_child(Path(args.ingest_child))
    if args.sequential_child:
        return sequential_child(Path(args.sequential_child))
    if shutil.which("git") is None:
        raise SystemExit("git is needed beside Muse Cloud")
    if not Path(GNU_TIME).is_file():
        raise SystemExit("GNU time (/usr/bin/time) is needed to measure peak memory")

    started = datetime.now(UTC).isoformat(timespec="seconds"), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-vs-git-") as tmp:
        results = run(args, Path(tmp))
    print()
    print_table(results.rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": {**machine(), "started": started[0], "load_average_at_start": started[1]},
        "rows": [{**asdict(r), "ratio": r.ratio} for r in results.rows],
        "scaling": results.scaling,
        "sequential": results.sequential,
    }
    (out / "bench_vs_git.json").write_text(json.dumps(report, indent=2) + "\n")
    write_chart(results.scaling, out / "bench_vs_git.png")
    print(f"\nwrote {out / 'bench_vs_git.json'} and {out / 'bench_vs_git.png'}")
    return 0 if all(r.passed is not False for r in results.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
