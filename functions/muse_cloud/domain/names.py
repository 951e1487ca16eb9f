"""The names a person chooses: handles (the owner part of a repository path) and repo names."""

from __future__ import annotations

import re

from muse_cloud.domain.errors import ServiceError

_HANDLE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
_REPO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# The API's own first path segment: a handle of that name would shadow /{owner}/{repo}/... routes.
RESERVED_HANDLES = frozenset({"api", "swagger"})
BOOTSTRAP_ADMIN_HANDLE = "admin"


def validate_handle(handle: str) -> str:
    if not _HANDLE.fullmatch(handle):
        raise ServiceError(
            "invalid_handle", "a handle is 1-40 lowercase letters, digits and inner hyphens", handle
        )
    if handle in RESERVED_HANDLES:
        raise ServiceError("invalid_handle", "that handle is reserved by the API", handle)
    return handle


def validate_repo_name(owner: str, name: str) -> None:
    validate_handle(owner)
    if not _REPO_NAME.fullmatch(name) or name.endswith((".", ".git")) or ".." in name:
        raise ServiceError(
            "invalid_repo_name", "name must be 1-100 of A-Z a-z 0-9 . _ - (no '..')", name
        )
