"""The one exception the command line reports: a stable code and a human message."""

from __future__ import annotations


class CliError(Exception):
    """A refusal worth one line (``error: <code>: <message>``), not a traceback."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
