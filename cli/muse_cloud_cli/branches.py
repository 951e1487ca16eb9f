"""Branches on the server: ``push --delete``, ``protect`` (protected-branch rules) and
``events`` (a repository's push events, tailed)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from muse_cloud_cli.client import MuseCloudClient, Remote
from muse_cloud_cli.errors import CliError, Exit
from muse_cloud_cli.progress import deleted_line, ref_line
from muse_cloud_cli.remotes import read_tracking, write_tracking

ClientFactory = Callable[..., MuseCloudClient]
DEFAULT_PATTERN = ":default"
# Publishers stamp an event when they log it, and two of them may log out of order by a moment:
# each poll looks this far behind the newest event seen, and drops what it showed already.
EVENT_SLACK = timedelta(seconds=30)


def delete_remote_branch(
    client: MuseCloudClient, remote: Remote, root: Path, tracking: str | None, branch: str
) -> list[str]:
    """Delete ``branch`` at the head the server shows now (it refuses if the branch moves
    meanwhile), and its remote-tracking head; the lines to print."""
    heads: dict[str, str] = client.refs(remote.owner, remote.name).get("branch_heads", {})
    head = heads.get(branch)
    if head is None:
        raise CliError("no_such_branch", f"{remote.url} has no branch {branch!r}")
    client.delete_branch(remote.owner, remote.name, branch, head)
    if tracking is not None:
        kept = read_tracking(root, tracking)
        kept.pop(branch, None)
        write_tracking(root, tracking, kept)
    return [f"To {remote.url}", deleted_line(branch)]


def _repo_id(client: MuseCloudClient, remote: Remote) -> str:
    repo_id: str = client.repo_by_slug(remote.owner, remote.name)["repoId"]
    return repo_id


def _rules_but(
    client: MuseCloudClient, remote: Remote, pattern: str
) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """The repository's id, its rules as read (with their version), and the rules but the
    one of ``pattern``: what a change of that rule starts from."""
    repo_id = _repo_id(client, remote)
    current = client.protection(repo_id)
    return repo_id, current, [r for r in current["rules"] if r["pattern"] != pattern]


def _rule_line(rule: dict[str, Any]) -> str:
    force = "allowed" if rule["force_push"] else "refused"
    deletion = "allowed" if rule["deletion"] else "refused"
    return (
        f"{rule['pattern']:<24} force push {force:<8} deletion {deletion:<8} push: {rule['push']}"
    )


def _time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise CliError("invalid_time", f"{text!r} is not an ISO 8601 time") from None


def _event_line(event: dict[str, Any], full: bool) -> str:
    if event["deleted"]:
        move = deleted_line(event["ref"])
    else:
        move = ref_line(
            event["ref"], event["before"], event["after"], forced=event["forced"], full=full
        )
    return f"{event['published_at']}  {event['pusher'] or '-':<16}{move}"


def add_branch_commands(
    commands: Any, parents: list[argparse.ArgumentParser], client_for: ClientFactory
) -> None:
    """The ``protect`` and ``events`` command groups; ``client_for(base_url, identity)``."""

    def cmd_protect_show(args: argparse.Namespace) -> int:
        remote = Remote.parse(args.url)
        with client_for(remote.base_url, args.identity, required=True) as client:
            protection = client.protection(_repo_id(client, remote))
        if args.json:
            print(json.dumps(protection, sort_keys=True))
            return Exit.OK
        print(f"rules of {remote.url} (version {protection['version']}):")
        for rule in protection["rules"]:
            print(f"  {_rule_line(rule)}")
        if not protection["rules"]:
            print("  none: every writer may force-push and delete every branch but the default")
        return Exit.OK

    def cmd_protect_set(args: argparse.Namespace) -> int:
        remote = Remote.parse(args.url)
        with client_for(remote.base_url, args.identity, required=True) as client:
            repo_id, current, rules = _rules_but(client, remote, args.pattern)
            rule = next(
                (r for r in current["rules"] if r["pattern"] == args.pattern),
                {
                    "pattern": args.pattern,
                    "force_push": False,
                    "deletion": False,
                    "push": "writers",
                },
            )
            if args.force_push is not None:
                rule["force_push"] = args.force_push == "allow"
            if args.deletion is not None:
                rule["deletion"] = args.deletion == "allow"
            if args.push is not None:
                rule["push"] = args.push
            changed = client.set_protection(repo_id, [*rules, rule], current["version"])
        print(f"protected {args.pattern} (version {changed['version']}): {_rule_line(rule)}")
        return Exit.OK

    def cmd_protect_remove(args: argparse.Namespace) -> int:
        remote = Remote.parse(args.url)
        with client_for(remote.base_url, args.identity, required=True) as client:
            repo_id, current, rules = _rules_but(client, remote, args.pattern)
            if len(rules) == len(current["rules"]):
                raise CliError("no_such_rule", f"{remote.url} has no rule {args.pattern!r}")
            changed = client.set_protection(repo_id, rules, current["version"])
        print(f"removed the rule {args.pattern} (version {changed['version']})")
        return Exit.OK

    def cmd_events(args: argparse.Namespace) -> int:
        remote = Remote.parse(args.url)
        since = _time(args.since) if args.since else None
        newest: datetime | None = None
        seen: set[str] = set()
        with client_for(remote.base_url, args.identity) as client:
            while True:
                after = newest - EVENT_SLACK if newest else since
                answer = client.events(
                    remote.owner,
                    remote.name,
                    since=after.isoformat() if after else None,
                    limit=args.limit,
                )
                for event in answer["events"]:
                    published = datetime.fromisoformat(event["published_at"])
                    newest = max(newest or published, published)
                    if event["event_id"] not in seen:
                        seen.add(event["event_id"])
                        line = json.dumps(event, sort_keys=True) if args.json else None
                        print(line or _event_line(event, args.full), flush=True)
                if not args.follow:
                    return Exit.OK
                time.sleep(args.interval)

    protect = commands.add_parser("protect", help="protected branches: show and change the rules")
    protect_commands = protect.add_subparsers(
        dest="protect_command", required=True, metavar="COMMAND"
    )
    show = protect_commands.add_parser("show", parents=parents, help="the repository's rules")
    show.add_argument("url", help="repository URL")
    show.add_argument("--json", action="store_true", help="the server's answer as JSON")
    show.set_defaults(run=cmd_protect_show)
    set_rule = protect_commands.add_parser(
        "set",
        parents=parents,
        help="add or change the rule of a pattern (owners and admins)",
        description="PATTERN is fnmatch-style ('release/*' covers release/1 and release/1/x); "
        f"{DEFAULT_PATTERN} covers the default branch, whichever it is. A new rule refuses "
        "force pushes and deletions and lets writers push, unless told otherwise.",
    )
    set_rule.add_argument("url", help="repository URL")
    set_rule.add_argument(
        "pattern", metavar="PATTERN", help=f"branch pattern, or {DEFAULT_PATTERN}"
    )
    set_rule.add_argument("--force-push", choices=("allow", "deny"), help="force pushes")
    set_rule.add_argument("--deletion", choices=("allow", "deny"), help="deleting the branch")
    set_rule.add_argument(
        "--push", choices=("writers", "admins"), help="who may change it (admins: owner and admins)"
    )
    set_rule.set_defaults(run=cmd_protect_set)
    remove = protect_commands.add_parser("remove", parents=parents, help="drop a pattern's rule")
    remove.add_argument("url", help="repository URL")
    remove.add_argument("pattern", metavar="PATTERN", help=f"branch pattern, or {DEFAULT_PATTERN}")
    remove.set_defaults(run=cmd_protect_remove)

    events = commands.add_parser(
        "events", parents=parents, help="a repository's push events (-f: keep tailing them)"
    )
    events.add_argument("url", help="repository URL")
    events.add_argument("--since", metavar="TIME", help="ISO 8601 (default: a day ago)")
    events.add_argument("--limit", type=int, default=100, help="at most this many at first")
    events.add_argument("-f", "--follow", action="store_true", help="wait for new events")
    events.add_argument(
        "--interval", type=float, default=2.0, metavar="SECONDS", help="between polls with -f"
    )
    events.add_argument("--json", action="store_true", help="one JSON object per event")
    events.add_argument("--full", action="store_true", help="full 64-character ids")
    events.set_defaults(run=cmd_events)
