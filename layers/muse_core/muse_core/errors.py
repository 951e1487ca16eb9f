"""The one exception type of the muse_core layer."""

from __future__ import annotations

# The offending item comes from untrusted input and is echoed back and stored with the push:
# enough of it to recognise, never megabytes of it.
MAX_ITEM_CHARS = 200
MAX_MESSAGE_CHARS = 1000


def clip(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


class MuseError(Exception):
    """A refusal with a stable machine-readable ``code`` and the offending ``item``."""

    def __init__(self, code: str, message: str, item: str | None = None) -> None:
        self.code = code
        self.message = clip(message, MAX_MESSAGE_CHARS) or ""
        self.item = clip(item, MAX_ITEM_CHARS)
        super().__init__(f"{code}: {self.message}")

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "item": self.item}
