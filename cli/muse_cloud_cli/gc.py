"""``muse-cloud gc``: one garbage collection pass on a server (``POST /api/gc``, admins only),
the pass its scheduled function runs; ``--dry-run`` lists what it would delete and the bytes."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from muse_cloud_cli.client import MuseCloudClient
from muse_cloud_cli.errors import Exit
from muse_cloud_cli.progress import plural

ClientFactory = Callable[..., MuseCloudClient]


def collect_garbage(
    client: MuseCloudClient, dry_run: bool, repo: str | None, grace_seconds: int | None
) -> dict[str, Any]:
    body = {"dry_run": dry_run, "repo": repo, "grace_seconds": grace_seconds}
    answer: dict[str, Any] = client.request("POST", "/api/gc", body).json()
    return answer


def report_lines(answer: dict[str, Any]) -> list[str]:
    """One line per repository, each file under it when listed, and the totals."""
    verb = "would delete" if answer["dry_run"] else "deleted"
    lines = []
    for repo in answer["repositories"]:
        name = repo["name"] or repo["repo_id"]
        counts = ", ".join(
            plural(repo[kind], noun)
            for kind, noun in (("commits", "commit"), ("snapshots", "snapshot"), ("packs", "pack"))
        )
        line = f"{name}: {repo['outcome']}"
        if repo["items"] or repo["files"]:
            line += f", {verb} {plural(repo['items'], 'item')} ({counts})"
            line += f" and {plural(len(repo['files']), 'file')} of {repo['bytes']:,} bytes"
        if repo["reason"]:
            line += f" ({repo['reason']})"
        lines.append(line)
        if answer["dry_run"]:
            lines += [f"  {f['bytes']:>12,}  {f['key']}" for f in repo["files"]]
    lines.append(
        f"{verb} {plural(answer['items'], 'item')} and {answer['bytes']:,} bytes in "
        f"{answer['seconds']:.1f} s ({answer['dynamodb_requests']:,} DynamoDB and "
        f"{answer['s3_requests']:,} S3 requests)"
        + ("" if answer["complete"] else "; stopped at the time budget, run it again")
    )
    return lines


def add_gc_command(
    commands: Any, parents: list[argparse.ArgumentParser], client_for: ClientFactory
) -> None:
    """The ``gc`` command; ``client_for(server, identity, required=True)`` signs."""

    def cmd_gc(args: argparse.Namespace) -> int:
        with client_for(args.server, args.identity, required=True) as client:
            answer = collect_garbage(client, args.dry_run, args.repo, args.grace)
        if args.json:
            print(json.dumps(answer, sort_keys=True))
        else:
            print("\n".join(report_lines(answer)))
        return Exit.OK

    gc = commands.add_parser(
        "gc", parents=parents, help="collect garbage on the server now (admins only)"
    )
    gc.add_argument(
        "--dry-run", action="store_true", help="list what would be deleted, delete nothing"
    )
    gc.add_argument("--repo", metavar="OWNER/NAME", help="only this repository")
    gc.add_argument(
        "--grace",
        type=int,
        metavar="SECONDS",
        help="keep what is younger than this, and what pushes of it touched "
        "(default: the server's, a day)",
    )
    gc.add_argument("--json", action="store_true", help="print the server's answer as JSON")
    gc.set_defaults(run=cmd_gc)
