"""The one exception the command line reports, and the exit statuses it ends with."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """Every exit status of ``muse-cloud`` and ``muse-cloud-dev``, as git's own: 0 done, 1 a
    refusal or failure (said in one ``error: <code>: <message>`` line), 2 a command line that
    does not parse (argparse's own), 130 interrupted (128 + SIGINT, as shells report it)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


class CliError(Exception):
    """A refusal worth one line (``error: <code>: <message>``), not a traceback."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
