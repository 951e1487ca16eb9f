"""The one exception type of the muse_core layer."""

from __future__ import annotations

from itertools import islice

# The offending item comes from untrusted input and is echoed back and stored with the push:
# enough of it to recognise, never megabytes of it.
MAX_ITEM_CHARS = 200
MAX_MESSAGE_CHARS = 1000


def clip(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


class _Literal(str):
    """Punctuation queued between the values ``describe`` still has to render."""


# Digits beyond this make int.__repr__ slow or refused (Python's 4,300-digit limit).
_MAX_INT_BITS = 1024


def describe(value: object, limit: int = MAX_ITEM_CHARS) -> str:
    """``repr(value)`` clipped to ``limit`` characters, built without recursion.

    The offending value of untrusted input can nest a thousand lists deep (repr would raise
    RecursionError) or hold a 5,000-digit integer (repr would raise ValueError); only what fits
    in ``limit`` is ever rendered.
    """
    parts: list[str] = []
    size = 0
    pending: list[object] = [value]
    while pending and size <= limit:
        item = pending.pop()
        if isinstance(item, _Literal):
            text: str = item
        elif isinstance(item, list | tuple | dict):
            text, closer = ("{", "}") if isinstance(item, dict) else ("(", ")")
            if isinstance(item, list):
                text, closer = "[", "]"
            # Each entry renders as at least one character: more than ``limit`` are never seen.
            entries = islice(item.items() if isinstance(item, dict) else item, limit + 1)
            queued: list[object] = []
            for entry in entries:
                if queued:
                    queued.append(_Literal(", "))
                if isinstance(item, dict):
                    queued.extend((entry[0], _Literal(": "), entry[1]))
                else:
                    queued.append(entry)
            if isinstance(item, tuple) and len(item) == 1:
                queued.append(_Literal(","))
            queued.append(_Literal(closer))
            pending.extend(reversed(queued))
        elif isinstance(item, str | bytes):
            text = repr(item[: limit + 1])
        elif isinstance(item, int) and item.bit_length() > _MAX_INT_BITS:
            text = f"<int of {item.bit_length()} bits>"
        elif isinstance(item, int | float) or item is None:
            text = repr(item)
        else:
            text = f"<{type(item).__name__}>"
        parts.append(text)
        size += len(text)
    return clip("".join(parts), limit) or ""


class MuseError(Exception):
    """A refusal with a stable machine-readable ``code`` and the offending ``item``."""

    def __init__(self, code: str, message: str, item: str | None = None) -> None:
        self.code = code
        self.message = clip(message, MAX_MESSAGE_CHARS) or ""
        self.item = clip(item, MAX_ITEM_CHARS)
        super().__init__(f"{code}: {self.message}")

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "item": self.item}
