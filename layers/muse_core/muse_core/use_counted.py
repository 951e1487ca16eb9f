"""Values kept only while a later use still needs them: a pack's walk knows up front how often
each manifest will be read again, so none is held longer (a long history of a big tree would
otherwise hold every manifest at once)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class UseCounted(Generic[Value]):
    def __init__(self, uses: Iterable[str], load: Callable[[str], Value | None]) -> None:
        self._uses = Counter(uses)
        self._kept: dict[str, Value] = {}
        self._load = load

    def take(self, key: str) -> tuple[Value | None, bool]:
        """The value (kept, or loaded), and whether this was its last counted use."""
        found = self._kept.get(key)
        if found is None:
            found = self._load(key)
        self._uses[key] -= 1
        if self._uses[key] > 0 and found is not None:
            self._kept[key] = found
            return found, False
        self._kept.pop(key, None)
        return found, True

    def offer(self, key: str, value: Value) -> None:
        """Keep a value made meanwhile, if a later use needs it."""
        if self._uses[key] > 0:
            self._kept[key] = value
