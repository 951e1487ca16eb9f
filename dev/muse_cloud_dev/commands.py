"""The dev stack's commands: ``start`` runs the local stack until Ctrl-C, ``demo`` pushes,
checks and clones a workload on a throwaway one. The stack itself (moto, boto3, the server
package) is imported only by the command that runs it."""

from __future__ import annotations

import argparse
import errno
import signal
import threading
from pathlib import Path
from types import FrameType

from muse_cloud_cli.errors import CliError, Exit
from muse_cloud_cli.stack_commands import DEFAULT_SERVER, default_data_dir, stack_installed
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
