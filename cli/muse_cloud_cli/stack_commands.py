"""The commands that run Muse Cloud on this machine, as the client offers them: ``muse-cloud dev``
and ``muse-cloud demo`` hand over to the dev stack (``muse_cloud_dev``) when it is installed,
and say in one line how to install it when it is not. Their options are defined here once, for
``muse-cloud-dev start`` and ``demo`` too."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

from muse_cloud_cli.errors import CliError
from muse_cloud_cli.workload import SEED

ENTRY_POINTS = "muse_cloud.stack"
DEV_PORT = 8787
DEFAULT_SERVER = f"http://127.0.0.1:{DEV_PORT}"
Command = Callable[[argparse.Namespace], int]


def default_data_dir() -> Path:
    return platformdirs.user_data_path("muse-cloud") / "dev"


STACK_MISSING = "the local stack is not installed: pip install 'muse-cloud[stack]'"


@contextmanager
def stack_installed() -> Iterator[None]:
    """Around an import of the dev stack: when it, or what it runs on (moto, boto3, the server
    package), is not installed, one line says how to install it."""
    try:
        yield
    except ModuleNotFoundError as error:
        if (error.name or "").startswith(("muse_cloud_cli", "muse_core", "muse_cloud_dev.")):
            raise  # a module of the client, or of the dev package itself: a bug, not an install
        raise CliError("dev_stack_missing", STACK_MISSING) from None


def _stack_command(name: str) -> Command:
    """The dev stack's command ``name``, found by its entry point (group ``muse_cloud.stack``),
    so the client names no module of the dev stack and installs without it."""
    from importlib.metadata import entry_points

    with stack_installed():
        found = [e for e in entry_points(group=ENTRY_POINTS) if e.name == name]
        if not found:
            raise CliError("dev_stack_missing", STACK_MISSING)
        command: Command = found[0].load()
    return command


def cmd_dev(args: argparse.Namespace) -> int:
    # The local stack needs moto and the server package; push and clone must work without them.
    return _stack_command("start")(args)


def cmd_demo(args: argparse.Namespace) -> int:
    return _stack_command("demo")(args)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_start_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, command: Command
) -> None:
    """The local stack's command and options: ``muse-cloud dev``, ``muse-cloud-dev start``."""
    start = commands.add_parser(name, help="run the whole stack locally until Ctrl-C")
    start.add_argument("--port", type=int, default=DEV_PORT, help="API port on 127.0.0.1")
    start.add_argument(
        "--data-dir",
        help=f"where the admin key and the stack's saved state live (default: "
        f"{default_data_dir()})",
    )
    start.add_argument(
        "--reset", action="store_true", help="start empty, discarding the saved state"
    )
    start.add_argument(
        "--snapshot-seconds",
        type=float,
        default=30.0,
        help="how often the state is saved while running (also saved on stop; default: 30)",
    )
    start.set_defaults(run=command)


def add_demo_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], command: Command
) -> None:
    """The demo's command and options: ``muse-cloud demo``, ``muse-cloud-dev demo``."""
    demo = commands.add_parser("demo", help="push, check and clone a workload on a local stack")
    demo.add_argument("--commits", type=positive, default=SEED.commits, help="workload commits")
    demo.add_argument("--files", type=positive, default=SEED.files, help="workload files")
    demo.add_argument(
        "--changed", type=positive, default=SEED.changed_per_commit, help="files per commit"
    )
    demo.add_argument("--repo", help="push this repository instead of generating one")
    demo.set_defaults(run=command)
