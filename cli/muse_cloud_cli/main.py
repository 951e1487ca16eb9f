"""``muse-cloud``: the local stack, push and clone, repositories, identities and history."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from muse_cloud_cli.client import ClientError, MuseCloudClient, Remote
from muse_cloud_cli.clone import clone_repo
from muse_cloud_cli.errors import CliError
from muse_cloud_cli.push import prepare_push, send_push
from muse_cloud_cli.signer import KeyFile, default_identity_path, new_identity
from muse_cloud_cli.tokens import add_token_commands
from muse_cloud_cli.workload import SEED, Workload
from muse_core.errors import MuseError

DEV_PORT = 8787
SERVER_ENV = "MUSE_CLOUD_URL"
DEFAULT_SERVER = f"http://127.0.0.1:{DEV_PORT}"
LOG_PAGE = 100

Command = Callable[[argparse.Namespace], int]


def _default_data_dir() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data_home) if os.path.isabs(data_home) else Path.home() / ".local" / "share"
    return base / "muse-cloud" / "dev"


def _load_identity(explicit: str | None, *, required: bool = False) -> KeyFile | None:
    """``--identity``, else ``$MUSE_CLOUD_IDENTITY``, else the default path; None: anonymous."""
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
    if "://" in value:
        remote = Remote.parse(value)
        return remote.base_url, remote.owner, remote.name
    owner, _, name = value.partition("/")
    if not owner or not name or "/" in name:
        raise CliError("invalid_repo", f"{value!r} is not OWNER/NAME")
    return server, owner, name


def _client(base_url: str, identity: str | None, *, required: bool = False) -> MuseCloudClient:
    return MuseCloudClient(base_url, _load_identity(identity, required=required))


# commands


def cmd_dev(args: argparse.Namespace) -> int:
    # The local stack needs moto and the server package; push and clone must work without them.
    from muse_cloud_cli.local_stack import LocalStack

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    data_dir = Path(args.data_dir).expanduser() if args.data_dir else _default_data_dir()
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with LocalStack(data_dir, api_port=args.port, verbose=True) as stack:
            print(f"Muse Cloud API  {stack.api_url}")
            print(f"admin key       {stack.admin_key_path}")
            print(f"S3/SQS/DynamoDB {stack.moto_url} (moto, in memory)")
            print(
                f"try: MUSE_CLOUD_IDENTITY={stack.admin_key_path} muse-cloud repo create "
                f"admin/songs --server {stack.api_url}"
            )
            print("Ctrl-C stops the stack", flush=True)
            while not stop.wait(0.5):
                pass
            print("stopping", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    if not args.remote:
        raise CliError("no_remote", "give the repository URL with --remote URL")
    remote = Remote.parse(args.remote)
    root = Path(args.path)
    with _client(remote.base_url, args.identity, required=True) as client:
        prepared = prepare_push(client, remote, root, args.branch)
        if prepared.up_to_date:
            print(f"everything up to date: {prepared.branch} is at {prepared.head}")
            return 0
        pack = prepared.pack
        print(
            f"pushing {prepared.branch} to {remote.url}: {len(pack['commits'])} commits, "
            f"{len(pack['snapshots'])} snapshots, {len(pack['objects'])} objects, "
            f"{len(prepared.data):,} bytes"
        )
        try:
            result = send_push(client, remote, prepared, force=args.force, progress=True)
        except ClientError as error:
            if error.code != "non_fast_forward":
                raise
            print(f"error: {error.code}: {error.message}", file=sys.stderr)
            print(
                "hint: the remote branch has commits this repository lacks; "
                "fetch and merge them, or push with --force to replace them",
                file=sys.stderr,
            )
            return 1
    answer = result.answer
    previous = answer.get("previous_head") or "(new branch)"
    print(f"{answer.get('branch')}: {previous} -> {answer.get('head')}")
    print(
        f"written: {answer.get('commits_written', 0)} commits, "
        f"{answer.get('snapshots_written', 0)} snapshots, "
        f"{answer.get('objects_written', 0)} objects "
        f"(upload {result.upload_seconds:.2f} s, ingestion {result.ingest_seconds:.2f} s)"
    )
    return 0


def cmd_clone(args: argparse.Namespace) -> int:
    remote = Remote.parse(args.url)
    dest = Path(args.dir)
    with _client(remote.base_url, args.identity) as client:
        result = clone_repo(client, remote, dest, progress=True)
    print(
        f"cloned {remote.url} into {dest}: {result.commits} commits, {result.snapshots} "
        f"snapshots, {result.objects} objects ({result.pack_bytes:,} bytes)"
    )
    if result.default_branch in result.branch_heads:
        print(f"checked out {result.default_branch}: {result.files} files")
    else:
        print("the repository has no commits yet")
    return 0


def cmd_repo_create(args: argparse.Namespace) -> int:
    server, owner, name = _server_and_slug(args.repo, args.server)
    with _client(server, args.identity, required=True) as client:
        repo = client.create_repo(owner, name, "private" if args.private else "public")
    print(f"created {repo['fullName']} ({repo['visibility']}), id {repo['repoId']}")
    print(f"remote: {server.rstrip('/')}/{repo['fullName']}")
    return 0


def cmd_repo_delete(args: argparse.Namespace) -> int:
    server, owner, name = _server_and_slug(args.repo, args.server)
    with _client(server, args.identity, required=True) as client:
        repo = client.repo_by_slug(owner, name)
        client.delete_repo(repo["repoId"])
    print(f"deleted {owner}/{name}")
    return 0


def cmd_identity_new(args: argparse.Namespace) -> int:
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
    return 0


def cmd_identity_register(args: argparse.Namespace) -> int:
    with _client(args.server, args.identity, required=True) as client:
        answer = client.create_identity(
            args.handle, args.public_key, is_admin=args.admin, is_agent=args.agent
        )
    print(f"registered {answer['handle']} as {answer['identity_id']}")
    return 0


def cmd_identity_show(args: argparse.Namespace) -> int:
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
    return 0


def cmd_log(args: argparse.Namespace) -> int:
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
                    f"{commit['commit_id']}  {commit.get('committed_at', '')}  {''.join(message)}"
                )
                shown += 1
            cursor = page.get("next_cursor")
            if not cursor:
                break
    return 0


def cmd_refs(args: argparse.Namespace) -> int:
    remote = Remote.parse(args.url)
    with _client(remote.base_url, args.identity) as client:
        refs = client.refs(remote.owner, remote.name)
    default = refs.get("default_branch")
    for branch, head in sorted(refs.get("branch_heads", {}).items()):
        print(f"{'*' if branch == default else ' '} {branch}  {head}")
    if not refs.get("branch_heads"):
        print(f"no branches yet (default branch: {default})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from muse_cloud_cli.demo import run_demo  # needs the local stack, as ``dev`` does

    workload = Workload(
        commits=args.commits,
        files=args.files,
        changed_per_commit=args.changed,
        blob_bytes=SEED.blob_bytes,
    )
    repo = Path(args.repo) if args.repo else None
    return 0 if run_demo(workload, repo) else 1


# arguments


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="muse-cloud", description="Push Muse repositories to Muse Cloud, and run it locally."
    )
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

    dev = commands.add_parser("dev", help="run the whole stack locally until Ctrl-C")
    dev.add_argument("--port", type=int, default=DEV_PORT, help="API port on 127.0.0.1")
    dev.add_argument("--data-dir", help="where the admin key lives (default: XDG data dir)")
    dev.set_defaults(run=cmd_dev)

    push = commands.add_parser("push", parents=[identity], help="push a branch")
    push.add_argument("path", nargs="?", default=".", help="repository (default: .)")
    push.add_argument("--remote", help="repository URL, e.g. http://127.0.0.1:8787/owner/repo")
    push.add_argument("--branch", help="branch to push (default: the checked-out branch)")
    push.add_argument("--force", action="store_true", help="move the branch even if it rewinds")
    push.set_defaults(run=cmd_push)

    clone = commands.add_parser("clone", parents=[identity], help="clone a repository")
    clone.add_argument("url")
    clone.add_argument("dir")
    clone.set_defaults(run=cmd_clone)

    repo = commands.add_parser("repo", help="create or delete repositories")
    repo_commands = repo.add_subparsers(dest="repo_command", required=True, metavar="COMMAND")
    create = repo_commands.add_parser("create", parents=[identity, server], help="create")
    create.add_argument("repo", metavar="OWNER/NAME", help="OWNER/NAME or a repository URL")
    create.add_argument("--private", action="store_true")
    create.set_defaults(run=cmd_repo_create)
    delete = repo_commands.add_parser("delete", parents=[identity, server], help="delete")
    delete.add_argument("repo", metavar="OWNER/NAME", help="OWNER/NAME or a repository URL")
    delete.set_defaults(run=cmd_repo_delete)

    ident = commands.add_parser("identity", help="key files and identities")
    ident_commands = ident.add_subparsers(dest="identity_command", required=True, metavar="COMMAND")
    new = ident_commands.add_parser("new", help="make a key file")
    new.add_argument("handle")
    new.add_argument("--admin", action="store_true")
    new.add_argument("--agent", action="store_true")
    new.add_argument("--out", metavar="FILE", help="default: the default identity path")
    new.set_defaults(run=cmd_identity_new)
    register = ident_commands.add_parser(
        "register", parents=[identity, server], help="register a public key (admins only)"
    )
    register.add_argument("handle")
    # An option, written --public-key=KEY: a base64url key may start with '-'.
    register.add_argument(
        "--public-key", required=True, help="base64url of the raw 32-byte Ed25519 key"
    )
    register.add_argument("--admin", action="store_true")
    register.add_argument("--agent", action="store_true")
    register.set_defaults(run=cmd_identity_register)
    show = ident_commands.add_parser("show", parents=[identity], help="show a key file")
    show.add_argument("--server", help="also ask this server who the key is")
    show.set_defaults(run=cmd_identity_show)

    log = commands.add_parser("log", parents=[identity], help="commits, newest first")
    log.add_argument("url")
    log.add_argument("--branch")
    log.add_argument("--limit", type=int, default=20)
    log.set_defaults(run=cmd_log)

    refs = commands.add_parser("refs", parents=[identity], help="branch heads")
    refs.add_argument("url")
    refs.set_defaults(run=cmd_refs)

    demo = commands.add_parser("demo", help="push, check and clone a workload on a local stack")
    demo.add_argument("--commits", type=int, default=SEED.commits)
    demo.add_argument("--files", type=int, default=SEED.files)
    demo.add_argument("--changed", type=int, default=SEED.changed_per_commit)
    demo.add_argument("--repo", help="push this repository instead of generating one")
    demo.set_defaults(run=cmd_demo)
    add_token_commands(commands, [identity, server], _client)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Command = args.run
    try:
        return run(args)
    except (CliError, MuseError) as error:
        print(f"error: {error.code}: {error.message}", file=sys.stderr)
    except OSError as error:
        print(f"error: os_error: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
