"""The demo: the local stack, a push of the seed workload, checks through the API, a clone back and
a file-by-file comparison, with the figures in one table."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from muse_cloud_cli.client import MuseCloudClient, Remote
from muse_cloud_cli.clone import CloneResult, clone_repo
from muse_cloud_cli.compare import Comparison, check_worktree, compare_repos
from muse_cloud_cli.progress import Reporter
from muse_cloud_cli.push import PushResult, prepare_push, send_push
from muse_cloud_cli.workload import SEED, Workload, generate_history
from muse_cloud_dev.local_stack import LocalStack
from muse_core.commits import read_commit
from muse_core.mpack import LocalHistory, encode_mpack, reachable_commits, topological_order
from muse_core.refs import list_branches
from muse_core.snapshots import read_snapshot

OWNER, NAME = "admin", "demo"
SNAPSHOTS_CHECKED = 3
# The protocol's estimate of one manifest entry sent in full, for the delta ratio.
FULL_ENTRY_BYTES = 80


@dataclass
class _Checks:
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.results.append((name, ok, detail))

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.results)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n:,} B"
    if n < 1024 * 1024:
        return f"{n / 1024:,.2f} KiB"
    return f"{n / 1024 / 1024:,.2f} MiB"


def _seconds(value: float) -> str:
    return f"{value:.2f} s"


def run_demo(
    workload: Workload = SEED, repo: Path | None = None, console: Console | None = None
) -> bool:
    """Run every step; True only when every check matched."""
    out = console or Console()
    reporter = Reporter()
    generating = workload if repo is None else None
    started = time.perf_counter()
    checks = _Checks()
    with (
        tempfile.TemporaryDirectory(prefix="muse-cloud-demo-") as scratch,
        LocalStack(Path(scratch) / "stack") as stack,
    ):
        out.print(f"local stack up: API {stack.api_url}, moto {stack.moto_url}")
        generated = time.perf_counter()
        if repo is None:
            repo = Path(scratch) / "source"
            out.print(
                f"generating {workload.commits:,} commits x {workload.files:,} files "
                f"({workload.changed_per_commit} changed per commit)"
            )
            generate_history(repo, workload)
        generated = time.perf_counter() - generated

        assert stack.admin is not None
        with MuseCloudClient(stack.api_url, stack.admin) as client:
            client.create_repo(OWNER, NAME, "public")
            remote = Remote(stack.api_url, OWNER, NAME)
            pushes: list[PushResult] = []
            for branch in list_branches(repo):
                out.print(f"pushing {branch}")
                prepared = prepare_push(client, remote, repo, branch, reporter=reporter)
                pushes.append(send_push(client, remote, prepared, reporter=reporter))

            heads = list_branches(repo)
            server_heads = client.refs(OWNER, NAME)["branch_heads"]
            checks.add("refs", server_heads == heads, f"{len(heads)} branch(es) as pushed")
            _check_snapshots(client, repo, heads, checks)

            out.print("cloning")
            clone = clone_repo(client, remote, Path(scratch) / "clone", reporter=reporter)
        comparison = compare_repos(repo, clone.dest)
        checks.add(
            "clone",
            comparison.matched,
            "; ".join(comparison.problems)
            or f"{comparison.objects:,} objects, {comparison.commits:,} commits, "
            f"{comparison.snapshots:,} snapshots, {comparison.refs} ref(s) identical",
        )
        _check_worktree(clone, checks)
    total = time.perf_counter() - started
    out.print(_figures(generating, generated, pushes, clone, comparison, total))
    out.print(_checks_table(checks))
    out.print("[bold green]all checks passed[/]" if checks.passed else "[bold red]checks failed[/]")
    return checks.passed


def _check_snapshots(
    client: MuseCloudClient, repo: Path, heads: dict[str, str], checks: _Checks
) -> None:
    """Rebuilt server-side from deltas and checkpoints, a few snapshots across the history."""
    order = topological_order(reachable_commits(LocalHistory(repo), heads.values()))
    if not order:
        checks.add("snapshots", True, "no commits")
        return
    picks = sorted({0, len(order) // 2, len(order) - 1})[:SNAPSHOTS_CHECKED]
    wrong = []
    for index in picks:
        snapshot_id = order[index].snapshot_id
        answer = client.snapshot(OWNER, NAME, snapshot_id)
        if answer.get("manifest") != read_snapshot(repo, snapshot_id).manifest:
            wrong.append(snapshot_id)
    detail = f"{len(picks) - len(wrong)}/{len(picks)} rebuilt manifests match"
    checks.add("snapshots", not wrong, detail + (f"; wrong: {wrong}" if wrong else ""))


def _check_worktree(clone: CloneResult, checks: _Checks) -> None:
    head = clone.branch_heads.get(clone.default_branch)
    if head is None:
        checks.add("checkout", True, "no default branch head")
        return
    manifest = read_snapshot(clone.dest, read_commit(clone.dest, head).snapshot_id).manifest
    wrong = check_worktree(clone.dest, manifest)
    detail = f"{len(manifest) - len(wrong):,}/{len(manifest):,} files of {clone.default_branch}"
    checks.add("checkout", not wrong, detail)


def _figures(
    workload: Workload | None,
    generate_seconds: float,
    pushes: list[PushResult],
    clone: CloneResult,
    comparison: Comparison,
    total: float,
) -> Table:
    table = Table(title="Muse Cloud demo", show_lines=False)
    table.add_column("step")
    table.add_column("figure", justify="right")
    table.add_column("detail")
    if workload is not None:
        table.add_row(
            "workload",
            f"{workload.commits:,} x {workload.files:,}",
            f"commits x files, {workload.changed_per_commit} changed per commit, "
            f"{workload.blob_bytes} B blobs; generated in {_seconds(generate_seconds)}",
        )
    pack_bytes = sum(len(p.prepared.data) for p in pushes)
    commits = sum(len(p.prepared.pack["commits"]) for p in pushes)
    snapshots = [s for p in pushes for s in p.prepared.pack["snapshots"]]
    objects = sum(len(p.prepared.pack["objects"]) for p in pushes)
    snapshot_bytes = len(encode_mpack({"snapshots": snapshots}))
    full_bytes = FULL_ENTRY_BYTES * comparison.manifest_entries
    table.add_row(
        "pack size",
        _size(pack_bytes),
        f"{len(pushes)} push(es): {commits:,} commits, {len(snapshots):,} snapshots, "
        f"{objects:,} objects",
    )
    if full_bytes:
        table.add_row(
            "snapshot list",
            _size(snapshot_bytes),
            f"{100 * snapshot_bytes / full_bytes:.2f}% of full manifests "
            f"(~{_size(full_bytes)} at {FULL_ENTRY_BYTES} B/entry)",
        )
    build = sum(p.prepared.build_seconds for p in pushes)
    upload = sum(p.upload_seconds for p in pushes)
    ingest = sum(p.ingest_seconds for p in pushes)
    server_ms = sum(int(p.answer.get("total_ms", 0)) for p in pushes)
    verify_ms = sum(int(p.answer.get("verify_ms", 0)) for p in pushes)
    table.add_row("build", _seconds(build), "mpack against the server's heads, encoded")
    rate = f"{pack_bytes / upload / 1024 / 1024:,.1f} MiB/s" if upload else ""
    table.add_row("upload", _seconds(upload), f"presign + PUT straight to S3 (moto), {rate}")
    table.add_row(
        "ingestion",
        _seconds(ingest),
        f"unpack-mpack answered; server-side run {server_ms / 1000:.2f} s",
    )
    table.add_row(
        "verification",
        _seconds(verify_ms / 1000),
        f"server verify of the push; client verify of the clone {_seconds(clone.verify_seconds)}",
    )
    table.add_row(
        "clone",
        _seconds(clone.total_seconds),
        f"fetch {_seconds(clone.fetch_seconds)}, download {_size(clone.pack_bytes)} in "
        f"{_seconds(clone.download_seconds)}, verify {_seconds(clone.verify_seconds)}, "
        f"write + checkout {_seconds(clone.write_seconds)}",
    )
    table.add_row("push total", _seconds(build + upload + ingest), "build + upload + ingestion")
    table.add_row("total", _seconds(total), "everything, stack start and generation included")
    return table


def _checks_table(checks: _Checks) -> Table:
    table = Table(title="checks")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for name, ok, detail in checks.results:
        table.add_row(name, "[green]match[/]" if ok else "[red]MISMATCH[/]", detail)
    return table
