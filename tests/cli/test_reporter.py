"""What a command shows while it runs: a display on a terminal only, and rich only for it."""

from __future__ import annotations

import io
import subprocess
import sys

from rich.console import Console

from muse_cloud_cli.progress import Reporter

PROBE = """
import sys
from muse_cloud_cli.progress import Reporter
reporter = Reporter()
with reporter.phase("working") as show:
    show("still working")
print(reporter.enabled, any(m.partition(".")[0] == "rich" for m in sys.modules))
"""


def test_without_a_terminal_nothing_is_shown_and_rich_is_not_imported() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["False", "False"]
    assert done.stderr == ""


def test_a_terminal_shows_each_phase_unless_quiet() -> None:
    for quiet, shown in ((False, True), (True, False)):
        screen = io.StringIO()
        reporter = Reporter(quiet=quiet, console=Console(file=screen, force_terminal=True))
        assert reporter.enabled is shown
        with reporter.phase("verifying 3 commits"):
            pass
        assert ("verifying 3 commits" in screen.getvalue()) is shown
