"""Push events: one per ref change (a push, a force push, a creation, a deletion), as the
EventBridge bus carries them (``detail-type`` "Muse Push") and the repository's log lists them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

EVENT_SOURCE = "muse.cloud"
DETAIL_TYPE = "Muse Push"


@dataclass(frozen=True)
class PushCounts:
    """What the push that moved the ref carried (a deletion carries nothing)."""

    commits: int = 0
    snapshots: int = 0
    objects: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class PushEvent:
    """One ref change. ``event_id`` is fixed when the change is made, so a consumer can tell a
    second delivery of one event (the bus delivers at least once) from another event."""

    event_id: str
    repo: str  # owner/name
    repo_id: str
    ref: str  # the branch
    before: str | None  # None: the branch was created
    after: str | None  # None: the branch was deleted
    forced: bool
    pusher: str | None
    push_id: str
    at: str
    counts: PushCounts

    @property
    def created(self) -> bool:
        return self.before is None

    @property
    def deleted(self) -> bool:
        return self.after is None

    def detail(self) -> dict[str, Any]:
        return {**asdict(self), "created": self.created, "deleted": self.deleted}

    @classmethod
    def of_detail(cls, detail: dict[str, Any]) -> PushEvent:
        counts = {k: int(v) for k, v in detail["counts"].items()}
        fields: dict[str, Any] = {k: detail[k] for k in cls.__dataclass_fields__ if k != "counts"}
        return cls(**fields, counts=PushCounts(**counts))
