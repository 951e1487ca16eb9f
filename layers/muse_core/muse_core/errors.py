"""The one exception type of the muse_core layer."""

from __future__ import annotations


class MuseError(Exception):
    """A refusal with a stable machine-readable ``code`` and the offending ``item``."""

    def __init__(self, code: str, message: str, item: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.item = item

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "item": self.item}
