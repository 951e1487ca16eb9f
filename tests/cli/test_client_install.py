"""The client installs and runs without the dev stack or the server: ``muse-cloud`` imports none of
them, works when they cannot be imported, and ``dev``/``demo`` then say how to install them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

STACK_MODULES = [
    "moto",
    "boto3",
    "botocore",
    "muse_cloud",
    "muse_cloud_dev",
    "aws_lambda_powertools",
]
# What the [server] and [stack] extras bring, when only the distribution's base is installed.
STACK_DEPENDENCIES = ["moto", "boto3", "botocore", "aws_lambda_powertools", "pydantic", "yaml"]
MISSING = (
    "error: dev_stack_missing: the local stack is not installed: pip install 'muse-cloud[stack]'\n"
)

LOADED_AFTER_HELP = """
import contextlib, io, json, sys
from muse_cloud_cli.main import main
for argv in (["--help"], ["dev", "--help"], ["demo", "--help"]):
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            main(argv)
    except SystemExit as done:
        assert done.code == 0, argv
print(json.dumps(sorted(sys.modules)))
"""

# Runs each command line of argv[2] (JSON: the program, then its arguments) with the top-level
# modules of argv[1] unimportable, as on a machine where they are not installed; prints
# [exit code, stderr] of each.
WITHOUT = """
import contextlib, importlib, importlib.abc, io, json, sys
absent = set(sys.argv[1].split(","))


class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in absent:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


assert not absent & {name.partition(".")[0] for name in sys.modules}
sys.meta_path.insert(0, Absent())
programs = {"muse-cloud": "muse_cloud_cli.main", "muse-cloud-dev": "muse_cloud_dev.main"}

results = []
for program, *argv in json.loads(sys.argv[2]):
    main = importlib.import_module(programs[program]).main
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


def _python(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_client_loads_neither_the_stack_nor_the_server() -> None:
    loaded = {name.partition(".")[0] for name in json.loads(_python(LOADED_AFTER_HELP))}
    assert "muse_cloud_cli" in loaded
    assert sorted(loaded & set(STACK_MODULES)) == []


@pytest.mark.parametrize(
    "absent",
    [STACK_MODULES, STACK_DEPENDENCIES],
    ids=["without-stack-packages", "without-stack-extras"],
)
def test_without_the_stack_the_client_runs_and_dev_says_how_to_install(
    absent: list[str], tmp_path: Path
) -> None:
    stack = str(tmp_path / "stack")
    commands = [
        ["muse-cloud", "generate", str(tmp_path / "songs"), "--commits", "3", "--files", "4"],
        ["muse-cloud", "identity", "new", "alice", "--out", str(tmp_path / "alice.json")],
        ["muse-cloud", "refs", "http://127.0.0.1:1/alice/songs"],
        ["muse-cloud", "dev", "--port", "0", "--data-dir", stack],
        ["muse-cloud", "demo", "--commits", "2"],
    ]
    if "muse_cloud_dev" not in absent:  # installed, without what it runs on
        commands += [
            ["muse-cloud-dev", "start", "--port", "0", "--data-dir", stack],
            ["muse-cloud-dev", "demo", "--commits", "2"],
        ]
    results = json.loads(_python(WITHOUT, ",".join(absent), json.dumps(commands)))
    generated, identity, refs, *stack_commands = results
    assert generated == [0, ""]
    assert identity == [0, ""]
    assert refs[0] == 1 and refs[1].startswith("error: unreachable: cannot reach ")
    assert stack_commands == [[1, MISSING]] * (len(commands) - 3)
    assert not (tmp_path / "stack").exists()
