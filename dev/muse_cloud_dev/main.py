"""``muse-cloud-dev``: Muse Cloud on this machine. ``start`` runs the local stack until Ctrl-C
(what ``muse-cloud dev`` runs), ``demo`` pushes, checks and clones a workload on a throwaway one
(what ``muse-cloud demo`` runs). Options and error lines are the client's, defined once there.

The stack itself (moto, boto3, the server package) is imported only by the command that runs it,
so that without the ``stack`` extra ``--help`` still works and a command says what to install."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import version

from muse_cloud_cli.main import run
from muse_cloud_cli.stack_commands import add_demo_command, add_start_command
from muse_cloud_dev.commands import cmd_demo, cmd_start


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
