"""Ids a request names (in its path or body), checked before they go into any key."""

from __future__ import annotations

from muse_cloud.domain.errors import ServiceError
from muse_core.errors import MuseError
from muse_core.ids import require_id


def checked_id(value: object, what: str) -> str:
    try:
        return require_id(value, what)
    except MuseError as error:
        raise ServiceError.from_core(error) from None
