"""What a person sees while a command runs: a spinner or a bar per long phase on stderr, only on
a terminal and without ``--quiet``, so that CI logs and pipes get the summary lines alone."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

SHORT_ID = 8


def short(commit_id: str | None, full: bool = False) -> str:
    if commit_id is None:
        return "(none)"
    return commit_id if full else commit_id[:SHORT_ID]


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


class Reporter:
    """Phases shown as they run; ``enabled`` is also what transfers use for their bars."""

    def __init__(self, *, quiet: bool = False, console: Console | None = None) -> None:
        # rich only for a display on a terminal: the lines a command prints need none of it,
        # and importing it is 27 ms of a one-commit push.
        self.console = console
        self.enabled = not quiet and (console.is_terminal if console else sys.stderr.isatty())
        if self.enabled and self.console is None:
            from rich.console import Console

            self.console = Console(stderr=True)
        # Put before every phase's text: which part of a longer task runs ("pack 2 of 5: ").
        self.label = ""

    @contextmanager
    def phase(self, text: str) -> Iterator[Callable[[str], None]]:
        """A spinner with ``text`` while the block runs; the block may change the text."""
        if not self.enabled or self.console is None:
            yield lambda _: None
            return
        with self.console.status(self.label + text) as shown:
            yield lambda new: shown.update(self.label + new)


def ref_line(
    branch: str,
    previous: str | None,
    head: str,
    *,
    forced: bool,
    full: bool = False,
    target: str | None = None,
) -> str:
    """One ref's move as git prints it after a push or a fetch."""
    where = f"{branch} -> {target or branch}"
    if previous is None:
        return f" * [new branch]      {where}"
    if forced:
        return f" + {short(previous, full)}...{short(head, full)} {where} (forced update)"
    return f"   {short(previous, full)}..{short(head, full)}  {where}"


def deleted_line(branch: str) -> str:
    """A ref gone, as git prints it after a push or a fetch."""
    return f" - [deleted]         {branch}"
