"""What an owner and each of their repositories may store and how often they may push, and what
they use of it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Scope = Literal["repository", "owner"]
# Pushes are counted in fixed windows of this many seconds.
WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Quota:
    max_bytes: int
    max_pushes_per_minute: int


@dataclass(frozen=True)
class Usage:
    """One repository's (``name`` owner/name) or one owner's use of its quota."""

    scope: Scope
    name: str
    bytes_stored: int
    packs_stored: int
    pushes_this_minute: int
    quota: Quota


def window_of(now: float) -> int:
    """The number of the push window ``now`` (Unix seconds) falls in."""
    return int(now // WINDOW_SECONDS)


def seconds_left(now: float) -> int:
    """Whole seconds until the window ``now`` falls in ends (at least 1: a Retry-After)."""
    return max(1, math.ceil((window_of(now) + 1) * WINDOW_SECONDS - now))
