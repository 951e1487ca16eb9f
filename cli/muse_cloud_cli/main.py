"""``muse-cloud``: push and clone, repositories, identities and history; ``dev`` and ``demo``
hand over to the dev package (``muse_cloud_dev``), imported only when one of them runs."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.filesize import decimal

from muse_cloud_cli.branches import add_branch_commands, delete_remote_branch
from muse_cloud_cli.errors import CliError, Exit
from muse_cloud_cli.gc import add_gc_command
from muse_cloud_cli.stack_commands import (
    DEFAULT_SERVER,
    add_demo_command,
    add_start_command,
    cmd_demo,
    cmd_dev,
    positive,
)
from muse_cloud_cli.tokens import add_token_commands
from muse_core.errors import MuseError

# What a command needs is imported when it runs (requests, rich, cryptography, the pack code):
# `--help`, `--version` and a command's own start pay only for what they use.
if TYPE_CHECKING:
    from muse_cloud_cli.client import MuseCloudClient, Remote
    from muse_cloud_cli.fetch import FetchResult
    from muse_cloud_cli.progress import Reporter
    from muse_cloud_cli.push import PushResult
    from muse_cloud_cli.signer import KeyFile

SERVER_ENV = "MUSE_CLOUD_URL"
LOG_PAGE = 100

Command = Callable[[argparse.Namespace], int]


def _load_identity(explicit: str | None, *, required: bool = False) -> KeyFile | None:
    """``--identity``, else ``$MUSE_CLOUD_IDENTITY``, else the default path; None: anonymous."""
    from muse_cloud_cli.signer import KeyFile, default_identity_path

    path = Path(explicit).expanduser() if explicit else default_identity_path()
    if not path.exists():
        if explicit or required or os.environ.get("MUSE_CLOUD_IDENTITY"):
            raise CliError(
                "no_identity",
                f"no key file at {path}; make one with `muse-cloud identity new` "
                "or pass --identity",
            )
        return None
    try:
        return KeyFile.load(path)
    except ValueError as error:
        raise CliError("invalid_identity", str(error)) from None


def _server_and_slug(value: str, server: str) -> tuple[str, str, str]:
    """``OWNER/NAME`` on ``--server``, or a full remote URL."""
    from muse_cloud_cli.client import Remote

    if "://" in value:
        remote = Remote.parse(value)
        return remote.base_url, remote.owner, remote.name
    owner, _, name = value.partition("/")
    if not owner or not name or "/" in name:
        raise CliError("invalid_repo", f"{value!r} is not OWNER/NAME")
    return server, owner, name


def _client(base_url: str, identity: str | None, *, required: bool = False) -> MuseCloudClient:
    from muse_cloud_cli.client import MuseCloudClient

    return MuseCloudClient(base_url, _load_identity(identity, required=required))


# commands


def _resolve_remote(root: Path, value: str | None) -> tuple[Remote, str | None]:
    """A remote's name (default ``origin``) or a URL; the name is None for a URL that no
    configured remote has, whose tracking heads then stay as they are."""
    from muse_cloud_cli.client import Remote
    from muse_cloud_cli.remotes import (
        DEFAULT_REMOTE,
        read_config,
        remote_entry,
        validate_remote_name,
    )

    value = value or DEFAULT_REMOTE
    if "://" in value:
        remote = Remote.parse(value)
        remotes = read_config(root).get("remotes")
        for name in sorted(remotes) if isinstance(remotes, dict) else []:
            if remote_entry(root, name).get("url", "").rstrip("/") == remote.url:
                return remote, name
        return remote, None
    url = remote_entry(root, validate_remote_name(value)).get("url")
    if not url:
        raise CliError(
            "no_remote",
            f"{root} has no remote {value!r}; add one with `muse remote add {value} URL` "
            "(the Muse client), or push once with --remote URL -u",
        )
    return Remote.parse(url), value


def _push_summary(root: Path, remote: Remote, answer: dict[str, object], full: bool) -> list[str]:
    """The ref moves the server reports, one line each, as git prints them."""
    from muse_cloud_cli.fetch import is_local_ancestor
    from muse_cloud_cli.progress import ref_line

    lines = [f"To {remote.url}"]
    updates = answer.get("updates")
    for update in updates if isinstance(updates, list) else []:
        branch, head, previous = update["branch"], update["head"], update.get("previous_head")
        forced = previous is not None and not is_local_ancestor(root, previous, head)
        lines.append(ref_line(branch, previous, head, forced=forced, full=full))
    if len(lines) == 1:
        lines.append(" = the server moved no branch")
    return lines


@dataclass(frozen=True)
class _PushTarget:
    root: Path
    remote: Remote
    name: str | None  # the remote's name in .muse/config.toml, when it has one
    branch: str


def _push_target(args: argparse.Namespace) -> _PushTarget:
    """Where and what to push, from the arguments and the repository's remotes; ``-u``
    records the remote (as ``origin`` when given as a URL) and its branch."""
    from muse_cloud_cli.push import current_branch
    from muse_cloud_cli.remotes import DEFAULT_REMOTE, remote_entry, set_remote

    root = Path(args.path)
    if args.remote_url and args.remote and Path(args.remote).is_dir():
        # The older form, `push PATH --remote URL`, still works.
        root, args.remote = Path(args.remote), None
    if args.remote_url and args.remote:
        raise CliError("invalid_arguments", "give the remote either as REMOTE or as --remote")
    remote, name = _resolve_remote(root, args.remote_url or args.remote)
    branch = args.branch_name or args.branch or current_branch(root)
    if args.set_upstream:
        recorded = remote_entry(root, DEFAULT_REMOTE).get("url")
        if name is None and recorded not in (None, remote.url):
            raise CliError(
                "remote_exists",
                f"{DEFAULT_REMOTE} already names {recorded}; "
                "push to it by name, or give -u with a configured remote's name",
            )
        name = name or DEFAULT_REMOTE
        set_remote(root, name, remote.url, branch=branch)
    return _PushTarget(root, remote, name, branch)


def cmd_push(args: argparse.Namespace) -> int:
    if args.delete:
        return cmd_delete_branch(args)
    from muse_cloud_cli.client import ClientError
    from muse_cloud_cli.progress import Reporter, plural, short
    from muse_cloud_cli.push import plan_push, send_split
    from muse_cloud_cli.remotes import update_tracking

    target = _push_target(args)
    root, remote, name, branch = target.root, target.remote, target.name, target.branch
    reporter = Reporter(quiet=args.quiet or args.json)
    with _client(remote.base_url, args.identity, required=True) as client:
        split = plan_push(client, remote, root, branch, force=args.force, reporter=reporter)
        if split.up_to_date:
            if name is not None:
                update_tracking(root, name, split.branch, split.head)
            print(
                json.dumps({"up_to_date": True, "branch": branch, "head": split.head})
                if args.json
                else f"everything up to date: {branch} is at {short(split.head, args.full)}"
            )
            return Exit.OK
        if not args.json:
            costs = [p.cost for p in split.packs]
            print(
                f"pushing {split.branch} to {remote.url}: "
                f"{plural(sum(c.commits for c in costs), 'commit')}, "
                f"{plural(sum(c.snapshots for c in costs), 'snapshot')}, "
                f"{plural(sum(c.objects for c in costs), 'object')}"
                + (f", in {len(costs)} packs" if len(costs) > 1 else "")
            )
        try:
            results = send_split(
                client,
                remote,
                split,
                force=args.force,
                reporter=reporter,
                on_pack=lambda result: _report_push(args, target, result),
            )
        except ClientError as error:
            if error.code != "non_fast_forward":
                raise
            print(f"error: {error.code}: {error.message}", file=sys.stderr)
            print(
                "hint: the remote branch has commits this repository lacks; "
                "fetch and merge them, or push with --force to replace them",
                file=sys.stderr,
            )
            return Exit.FAILED
    if args.json:
        print(json.dumps({**results[-1].answer, "packs": len(results)}, sort_keys=True))
    return Exit.OK


def cmd_delete_branch(args: argparse.Namespace) -> int:
    """``push [REMOTE] --delete BRANCH``: the branch goes on the server and from the remote's
    tracking heads."""
    root = Path(args.path)
    if args.remote_url and args.remote:
        raise CliError("invalid_arguments", "give the remote either as REMOTE or as --remote")
    remote, name = _resolve_remote(root, args.remote_url or args.remote)
    with _client(remote.base_url, args.identity, required=True) as client:
        lines = delete_remote_branch(client, remote, root, name, args.delete)
    for line in lines:
        print(line)
    return Exit.OK


def _report_push(args: argparse.Namespace, target: _PushTarget, result: PushResult) -> None:
    """One pack's ref moves: the remote-tracking heads follow them at once (a later pack that
    fails leaves them where the server is), and, unless ``--json``, its summary."""
    from muse_cloud_cli.progress import plural
    from muse_cloud_cli.remotes import update_tracking

    answer = result.answer
    updates = answer.get("updates")
    if target.name is not None:
        for update in updates if isinstance(updates, list) else []:
            update_tracking(target.root, target.name, update["branch"], update["head"])
    if args.json:
        return
    for line in _push_summary(target.root, target.remote, answer, args.full):
        print(line, flush=True)
    print(
        f"written: {plural(int(answer.get('commits_written', 0)), 'commit')}, "
        f"{plural(int(answer.get('snapshots_written', 0)), 'snapshot')}, "
        f"{plural(int(answer.get('objects_written', 0)), 'object')}, "
        f"{len(result.prepared.data):,} bytes "
        f"(upload {result.upload_seconds:.2f} s, ingestion {result.ingest_seconds:.2f} s)",
        flush=True,
    )


def _fetch(args: argparse.Namespace, root: Path, reporter: Reporter) -> tuple[str, FetchResult]:
    from muse_cloud_cli.fetch import fetch_remote, is_local_ancestor
    from muse_cloud_cli.progress import deleted_line, plural, ref_line

    remote, name = _resolve_remote(root, args.remote)
    if name is None:
        raise CliError(
            "no_remote", "fetch needs a configured remote (its tracking heads live under its name)"
        )
    with _client(remote.base_url, args.identity) as client:
        result = fetch_remote(client, remote, root, name, reporter)
    if result.moves:
        print(f"From {remote.url}")
    for move in result.moves:
        if move.head is None:
            print(deleted_line(f"{name}/{move.branch}"))
        else:
            forced = move.previous is not None and not is_local_ancestor(
                root, move.previous, move.head
            )
            print(
                ref_line(
                    move.branch,
                    move.previous,
                    move.head,
                    forced=forced,
                    full=args.full,
                    target=f"{name}/{move.branch}",
                )
            )
    if result.commits:
        print(f"received {plural(result.commits, 'commit')} ({result.pack_bytes:,} bytes)")
    return name, result


def cmd_fetch(args: argparse.Namespace) -> int:
    from muse_cloud_cli.progress import Reporter

    root = Path(args.path)
    _, result = _fetch(args, root, Reporter(quiet=args.quiet))
    if not result.moves:
        print("already up to date")
    return Exit.OK


def cmd_pull(args: argparse.Namespace) -> int:
    from muse_cloud_cli.fetch import fast_forward
    from muse_cloud_cli.progress import Reporter, plural, short
    from muse_cloud_cli.push import current_branch
    from muse_core.refs import read_head

    root = Path(args.path)
    reporter = Reporter(quiet=args.quiet)
    name, result = _fetch(args, root, reporter)
    kind, checked_out = read_head(root)
    branch = args.branch or current_branch(root)
    with reporter.phase("checking out"):
        outcome = fast_forward(
            root,
            branch,
            name,
            result.heads.get(branch),
            checked_out=(kind, checked_out) == ("ref", branch),
        )
    if not outcome.moved:
        print(f"already up to date: {branch} is at {short(outcome.head, args.full)}")
        return Exit.OK
    files = f" ({plural(outcome.files, 'file')} checked out)" if outcome.files else ""
    print(
        f"fast-forward {branch}: {short(outcome.previous, args.full)}.."
        f"{short(outcome.head, args.full)}{files}"
    )
    return Exit.OK


def cmd_clone(args: argparse.Namespace) -> int:
    from muse_cloud_cli.client import Remote
    from muse_cloud_cli.clone import clone_repo
    from muse_cloud_cli.progress import Reporter, plural
    from muse_cloud_cli.remotes import DEFAULT_REMOTE

    remote = Remote.parse(args.url)
    dest = Path(args.dir) if args.dir else Path(remote.name)
    with _client(remote.base_url, args.identity) as client:
        result = clone_repo(client, remote, dest, reporter=Reporter(quiet=args.quiet))
    print(
        f"cloned {remote.url} into {dest}: {plural(result.commits, 'commit')}, "
        f"{plural(result.snapshots, 'snapshot')}, {plural(result.objects, 'object')} "
        f"({result.pack_bytes:,} bytes); remote {DEFAULT_REMOTE} recorded"
    )
    if result.default_branch in result.branch_heads:
        print(f"checked out {result.default_branch}: {plural(result.files, 'file')}")
    else:
        print("the repository has no commits yet")
    return Exit.OK


def cmd_repo_create(args: argparse.Namespace) -> int:
    server, owner, name = _server_and_slug(args.repo, args.server)
    with _client(server, args.identity, required=True) as client:
        visibility = "private" if args.private else "public"
        repo = client.create_repo(owner, name, visibility, args.domain)
    print(
        f"created {repo['fullName']} ({repo['visibility']}, {repo['domain']}), id {repo['repoId']}"
    )
    print(f"remote: {server.rstrip('/')}/{repo['fullName']}")
    return Exit.OK


def cmd_repo_delete(args: argparse.Namespace) -> int:
    server, owner, name = _server_and_slug(args.repo, args.server)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("confirmation_needed", f"deleting {owner}/{name} needs --yes")
        typed = input(f"delete {owner}/{name} and all its history? type its name to confirm: ")
        if typed.strip() not in (name, f"{owner}/{name}"):
            raise CliError("not_confirmed", f"{owner}/{name} was not deleted")
    with _client(server, args.identity, required=True) as client:
        repo = client.repo_by_slug(owner, name)
        client.delete_repo(repo["repoId"])
    print(f"deleted {owner}/{name}")
    return Exit.OK


def cmd_repo_default(args: argparse.Namespace) -> int:
    server, owner, name = _server_and_slug(args.repo, args.server)
    with _client(server, args.identity, required=True) as client:
        repo = client.update_repo(client.repo_by_slug(owner, name)["repoId"], args.branch)
    print(f"the default branch of {repo['fullName']} is {repo['defaultBranch']}")
    return Exit.OK


def cmd_identity_new(args: argparse.Namespace) -> int:
    from muse_cloud_cli.signer import default_identity_path, new_identity

    out = Path(args.out).expanduser() if args.out else default_identity_path()
    if out.exists():
        raise CliError("identity_exists", f"{out} already exists; choose another --out")
    key = new_identity(args.handle, is_admin=args.admin, is_agent=args.agent)
    key.save(out)
    print(f"wrote {out} (mode 0600)")
    print(f"handle       {key.handle}")
    print(f"identity_id  {key.identity_id}")
    print(f"public_key   {key.public_key}")
    flags = " --admin" if key.is_admin else ""
    flags += " --agent" if key.is_agent else ""
    print(
        f"an admin registers it with: muse-cloud identity register {key.handle} "
        f"--public-key={key.public_key}{flags}"
    )
    return Exit.OK


def cmd_identity_register(args: argparse.Namespace) -> int:
    with _client(args.server, args.identity, required=True) as client:
        answer = client.create_identity(
            args.handle, args.public_key, is_admin=args.admin, is_agent=args.agent
        )
    print(f"registered {answer['handle']} as {answer['identity_id']}")
    return Exit.OK


def cmd_identity_show(args: argparse.Namespace) -> int:
    from muse_cloud_cli.client import MuseCloudClient

    key = _load_identity(args.identity, required=True)
    assert key is not None
    print(f"handle       {key.handle}")
    print(f"identity_id  {key.identity_id}")
    print(f"public_key   {key.public_key}")
    print(f"admin        {key.is_admin}")
    print(f"agent        {key.is_agent}")
    if args.server:
        with MuseCloudClient(args.server, key) as client:
            me = client.me()
        print(
            f"server knows {me.get('handle')} (admin: {me.get('is_admin')}, "
            f"agent: {me.get('is_agent')})"
        )
    return Exit.OK


def cmd_log(args: argparse.Namespace) -> int:
    from muse_cloud_cli.client import Remote
    from muse_cloud_cli.progress import short

    remote = Remote.parse(args.url)
    shown = 0
    cursor: str | None = None
    with _client(remote.base_url, args.identity) as client:
        while shown < args.limit:
            page = client.log(
                remote.owner,
                remote.name,
                branch=args.branch,
                limit=min(LOG_PAGE, args.limit - shown),
                cursor=cursor,
            )
            for commit in page.get("commits", [])[: args.limit - shown]:
                message = str(commit.get("message", "")).splitlines()[0:1]
                print(
                    f"{short(commit['commit_id'], args.full)}  "
                    f"{commit.get('committed_at', '')}  {''.join(message)}"
                )
                shown += 1
            cursor = page.get("next_cursor")
            if not cursor:
                break
    return Exit.OK


def cmd_refs(args: argparse.Namespace) -> int:
    from muse_cloud_cli.client import Remote
    from muse_cloud_cli.progress import short

    remote = Remote.parse(args.url)
    with _client(remote.base_url, args.identity) as client:
        refs = client.refs(remote.owner, remote.name)
    if args.json:
        print(json.dumps(refs, sort_keys=True))
        return Exit.OK
    default = refs.get("default_branch")
    for branch, head in sorted(refs.get("branch_heads", {}).items()):
        print(f"{'*' if branch == default else ' '} {branch}  {short(head, args.full)}")
    if not refs.get("branch_heads"):
        print(f"no branches yet (default branch: {default})")
    return Exit.OK


def cmd_usage(args: argparse.Namespace) -> int:
    """An owner's usage, or one repository's (OWNER/NAME or its URL)."""
    from muse_cloud_cli.progress import plural

    if "/" in args.target:
        server, owner, name = _server_and_slug(args.target, args.server)
    else:
        server, owner, name = args.server, args.target, None
    with _client(server, args.identity, required=True) as client:
        usage = client.owner_usage(owner) if name is None else client.repo_usage(owner, name)
    if args.json:
        print(json.dumps(usage, sort_keys=True))
        return Exit.OK
    print(f"{usage['name']} ({usage['scope']})")
    print(
        f"  stored  {decimal(usage['bytes_stored'])} of {decimal(usage['max_bytes'])} "
        f"in {plural(usage['packs_stored'], 'pack')}"
    )
    print(
        f"  pushes  {usage['pushes_this_minute']} this minute, of "
        f"{usage['max_pushes_per_minute']} allowed"
    )
    return Exit.OK


def cmd_generate(args: argparse.Namespace) -> int:
    from muse_cloud_cli.fetch import check_out_move
    from muse_cloud_cli.progress import plural
    from muse_cloud_cli.workload import Workload, generate_history

    root = Path(args.dir)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise CliError("destination_exists", f"{root} exists and is not an empty directory")
    workload = Workload(commits=args.commits, files=args.files, changed_per_commit=args.changed)
    ids = generate_history(root, workload)
    files = check_out_move(root, None, ids[-1])
    print(f"made {root}: {plural(len(ids), 'commit')} on main, {plural(files, 'file')} checked out")
    return Exit.OK


class _Version(argparse.Action):
    """argparse's ``version`` action, reading the installed version only when it is asked for
    (importlib.metadata is a tenth of the client's start)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            default=argparse.SUPPRESS,
            help="show program's version number and exit",
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from importlib.metadata import version

        print(f"{parser.prog} {version('muse-cloud')}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="muse-cloud", description="Push Muse repositories to Muse Cloud, and run it locally."
    )
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    identity = argparse.ArgumentParser(add_help=False)
    identity.add_argument(
        "--identity",
        metavar="FILE",
        help="key file to sign with (default: $MUSE_CLOUD_IDENTITY, then "
        "~/.config/muse-cloud/identity.json)",
    )
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument(
        "--server",
        default=os.environ.get(SERVER_ENV, DEFAULT_SERVER),
        help=f"API base URL (default: ${SERVER_ENV}, then {DEFAULT_SERVER})",
    )
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument(
        "-q", "--quiet", action="store_true", help="no progress display (none off a terminal)"
    )
    output.add_argument("--full", action="store_true", help="full 64-character ids")
    local = argparse.ArgumentParser(add_help=False)
    local.add_argument(
        "-C", dest="path", metavar="PATH", default=".", help="the repository (default: .)"
    )

    add_start_command(commands, "dev", cmd_dev)

    push = commands.add_parser(
        "push", parents=[identity, output, local], help="push a branch to a remote"
    )
    push.add_argument(
        "remote", nargs="?", metavar="REMOTE", help="remote name or URL (default: origin)"
    )
    push.add_argument(
        "branch_name", nargs="?", metavar="BRANCH", help="default: the checked-out branch"
    )
    push.add_argument(
        "--remote",
        dest="remote_url",
        metavar="URL",
        help="repository URL, e.g. http://127.0.0.1:8787/owner/repo",
    )
    push.add_argument("--branch", help="the branch to push (same as BRANCH)")
    push.add_argument("--force", action="store_true", help="move the branch even if it rewinds")
    push.add_argument(
        "-u",
        "--set-upstream",
        action="store_true",
        help="record the remote (origin for a URL) and the branch in .muse/config.toml",
    )
    push.add_argument("--json", action="store_true", help="print the server's answer as JSON")
    push.add_argument(
        "--delete",
        metavar="BRANCH",
        help="delete BRANCH on the remote instead (refused if it moves meanwhile)",
    )
    push.set_defaults(run=cmd_push)

    fetch = commands.add_parser(
        "fetch", parents=[identity, output, local], help="bring in a remote's new commits"
    )
    fetch.add_argument(
        "remote", nargs="?", metavar="REMOTE", help="remote name or URL (default: origin)"
    )
    fetch.set_defaults(run=cmd_fetch)

    pull = commands.add_parser(
        "pull",
        parents=[identity, output, local],
        help="fetch, then fast-forward the branch and its checkout",
    )
    pull.add_argument(
        "remote", nargs="?", metavar="REMOTE", help="remote name or URL (default: origin)"
    )
    pull.add_argument("branch", nargs="?", metavar="BRANCH", help="default: the checked-out one")
    pull.set_defaults(run=cmd_pull)

    clone = commands.add_parser("clone", parents=[identity, output], help="clone a repository")
    clone.add_argument("url", help="repository URL, e.g. http://127.0.0.1:8787/owner/repo")
    clone.add_argument("dir", nargs="?", help="where to (default: the repository's name)")
    clone.set_defaults(run=cmd_clone)

    repo = commands.add_parser("repo", help="create or delete repositories")
    repo_commands = repo.add_subparsers(dest="repo_command", required=True, metavar="COMMAND")
    create = repo_commands.add_parser("create", parents=[identity, server], help="create")
    create.add_argument("repo", metavar="OWNER/NAME", help="OWNER/NAME or a repository URL")
    create.add_argument("--private", action="store_true", help="readable only by its people")
    create.add_argument(
        "--domain",
        help="what the repository holds, as its clients' repo.json says (default: code); the Muse "
        "client checks a clone out with it",
    )
    create.set_defaults(run=cmd_repo_create)
    delete = repo_commands.add_parser("delete", parents=[identity, server], help="delete")
    delete.add_argument("repo", metavar="OWNER/NAME", help="OWNER/NAME or a repository URL")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(run=cmd_repo_delete)
    default = repo_commands.add_parser(
        "default", parents=[identity, server], help="choose the default branch (admins)"
    )
    default.add_argument("repo", metavar="OWNER/NAME", help="OWNER/NAME or a repository URL")
    default.add_argument("branch", metavar="BRANCH", help="an existing branch")
    default.set_defaults(run=cmd_repo_default)

    ident = commands.add_parser("identity", help="key files and identities")
    ident_commands = ident.add_subparsers(dest="identity_command", required=True, metavar="COMMAND")
    new = ident_commands.add_parser("new", help="make a key file")
    new.add_argument("handle", help="the name the identity goes by")
    new.add_argument("--admin", action="store_true", help="mark the key file as an admin's")
    new.add_argument("--agent", action="store_true", help="mark the key file as an agent's")
    new.add_argument("--out", metavar="FILE", help="default: the default identity path")
    new.set_defaults(run=cmd_identity_new)
    register = ident_commands.add_parser(
        "register", parents=[identity, server], help="register a public key (admins only)"
    )
    register.add_argument("handle", help="the handle to register the key under")
    # An option, written --public-key=KEY: a base64url key may start with '-'.
    register.add_argument(
        "--public-key", required=True, help="base64url of the raw 32-byte Ed25519 key"
    )
    register.add_argument("--admin", action="store_true", help="the identity may administer")
    register.add_argument("--agent", action="store_true", help="the identity is an agent")
    register.set_defaults(run=cmd_identity_register)
    show = ident_commands.add_parser("show", parents=[identity], help="show a key file")
    show.add_argument("--server", help="also ask this server who the key is")
    show.set_defaults(run=cmd_identity_show)

    log = commands.add_parser("log", parents=[identity, output], help="commits, newest first")
    log.add_argument("url", help="repository URL")
    log.add_argument("--branch", help="default: the repository's default branch")
    log.add_argument("--limit", type=positive, default=20, help="at most this many (default 20)")
    log.set_defaults(run=cmd_log)

    refs = commands.add_parser("refs", parents=[identity, output], help="branch heads")
    refs.add_argument("url", help="repository URL")
    refs.add_argument("--json", action="store_true", help="the server's answer as JSON")
    refs.set_defaults(run=cmd_refs)

    usage = commands.add_parser(
        "usage",
        parents=[identity, server],
        help="what an owner or a repository stores and pushes, against its quota",
    )
    usage.add_argument("target", metavar="OWNER[/NAME]", help="an owner, OWNER/NAME, or a URL")
    usage.add_argument("--json", action="store_true", help="the server's answer as JSON")
    usage.set_defaults(run=cmd_usage)

    generate = commands.add_parser(
        "generate", help="make a repository to push: a generated history, checked out"
    )
    generate.add_argument("dir", help="a new or empty directory")
    generate.add_argument("--commits", type=positive, default=20, help="default: 20")
    generate.add_argument("--files", type=positive, default=30, help="default: 30")
    generate.add_argument("--changed", type=positive, default=3, help="files per commit")
    generate.set_defaults(run=cmd_generate)

    add_demo_command(commands, cmd_demo)
    add_token_commands(commands, [identity, server], _client)
    add_branch_commands(commands, [identity], _client)
    add_gc_command(commands, [identity, server], _client)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run a parsed command: an error is one line on stderr and a non-zero exit code."""
    command: Command = args.run
    try:
        return command(args)
    except (CliError, MuseError) as error:
        print(f"error: {error.code}: {error.message}", file=sys.stderr)
        if error.code == "auth_unknown_key":
            print(
                "hint: the server does not know this key. A `muse-cloud dev` started with "
                "--reset or another --data-dir is empty: register the identity again, or sign "
                "with that stack's admin key (<data-dir>/admin.json)",
                file=sys.stderr,
            )
    except OSError as error:
        print(f"error: os_error: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return Exit.INTERRUPTED
    return Exit.FAILED


if __name__ == "__main__":
    sys.exit(main())
