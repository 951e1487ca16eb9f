"""``muse-cloud-dev``: Muse Cloud on this machine. ``start`` runs the local stack until Ctrl-C
(what ``muse-cloud dev`` runs), ``demo`` pushes, checks and clones a workload on a throwaway one
(what ``muse-cloud demo`` runs). Options and error lines are the client's, defined once there.

The stack itself (moto, boto3, the server package) is imported only by the command that runs it,
so that without the ``stack`` extra ``--help`` still works and a command says what to install."""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from types import FrameType

from muse_cloud_cli.errors import CliError, Exit
from muse_cloud_cli.main import (
    DEFAULT_SERVER,
    add_demo_command,
    add_start_command,
    default_data_dir,
    run,
    stack_installed,
)
from muse_cloud_cli.workload import SEED, Workload


def cmd_start(args: argparse.Namespace) -> int:
    with stack_installed():
        from muse_cloud_dev.local_stack import LocalStack

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    stack = LocalStack(
        data_dir,
        api_port=args.port,
        verbose=True,
        persist=True,
        reset=args.reset,
        snapshot_seconds=args.snapshot_seconds,
    )
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            stack.start()
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise CliError(
                "port_in_use",
                f"port {args.port} on 127.0.0.1 is in use (another `muse-cloud dev`?); "
                "stop it or choose another with --port",
            ) from None
        try:
            print(f"Muse Cloud API  {stack.api_url}")
            print(f"admin key       {stack.admin_key_path}")
            print(f"S3/SQS/DynamoDB {stack.moto_url} (moto)")
            print(f"data            {stack.describe_state()}")
            print(
                f"try: muse-cloud repo create admin/songs --server {stack.api_url} "
                f"--identity {stack.admin_key_path}"
            )
            print("Ctrl-C stops the stack", flush=True)
            while not stop.wait(0.5):
                pass
            print("stopping", flush=True)
        finally:
            stack.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return Exit.OK


def cmd_demo(args: argparse.Namespace) -> int:
    with stack_installed():
        from muse_cloud_dev.demo import run_demo

    workload = Workload(
        commits=args.commits,
        files=args.files,
        changed_per_commit=args.changed,
        blob_bytes=SEED.blob_bytes,
    )
    repo = Path(args.repo) if args.repo else None
    passed = run_demo(workload, repo)
    admin = default_data_dir() / "admin.json"
    print("\ntry it by hand, each in order (the first in a terminal of its own):")
    print("  muse-cloud dev")
    print(f"  muse-cloud repo create admin/songs --identity {admin}")
    print(
        f"  muse-cloud generate songs --commits 20 && muse-cloud push -C songs "
        f"--remote {DEFAULT_SERVER}/admin/songs -u --identity {admin}"
    )
    return Exit.OK if passed else Exit.FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="muse-cloud-dev",
        description="Run Muse Cloud on this machine: moto for S3, SQS and DynamoDB, the functions "
        "in worker processes, the API on 127.0.0.1.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('muse-cloud')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_start_command(commands, "start", cmd_start)
    add_demo_command(commands, cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
