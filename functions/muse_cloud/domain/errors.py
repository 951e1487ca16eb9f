"""The one exception type of the server: a refusal with a stable code, a message and the item.

It carries no HTTP status: the API edge maps each code to its status in one table
(``muse_cloud.api.statuses``), so a refusal means the same wherever it is raised.
"""

from __future__ import annotations

from muse_core.errors import MAX_ITEM_CHARS, MAX_MESSAGE_CHARS, MuseError, clip


class ServiceError(Exception):
    def __init__(
        self, code: str, message: str, item: str | None = None, *, retry_after: int | None = None
    ) -> None:
        self.code = code
        self.message = clip(message, MAX_MESSAGE_CHARS) or ""
        self.item = clip(item, MAX_ITEM_CHARS)
        # Seconds after which the same request may succeed: the API edge's Retry-After.
        self.retry_after = retry_after
        super().__init__(f"{code}: {self.message}")

    @classmethod
    def from_core(cls, error: MuseError) -> ServiceError:
        return cls(error.code, error.message, error.item)

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "item": self.item}


def not_found(what: str, item: str | None = None) -> ServiceError:
    return ServiceError("not_found", f"{what} not found", item)
