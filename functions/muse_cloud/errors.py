"""The one exception type of the server layer: a refusal with an HTTP status and a stable code."""

from __future__ import annotations

from muse_core.errors import MAX_ITEM_CHARS, MAX_MESSAGE_CHARS, MuseError, clip

# Status for each muse_core code; anything not listed is a 422 (the pack or body is invalid).
_STATUS_BY_CORE_CODE = {"limit_exceeded": 413}


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str, item: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = clip(message, MAX_MESSAGE_CHARS) or ""
        self.item = clip(item, MAX_ITEM_CHARS)
        super().__init__(f"{code}: {self.message}")

    @classmethod
    def from_core(cls, error: MuseError) -> ServiceError:
        return cls(_STATUS_BY_CORE_CODE.get(error.code, 422), error.code, error.message, error.item)

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "item": self.item}


def not_found(what: str, item: str | None = None) -> ServiceError:
    return ServiceError(404, "not_found", f"{what} not found", item)
