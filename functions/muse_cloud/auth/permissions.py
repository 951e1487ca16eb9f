"""Who may read, push to and administer a repository: pure policy over a Caller and a repo.

A caller who may not read a repository gets the same 404 as for one that does not exist, so
private repositories do not leak; refusals on a repository the caller can see are 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from muse_cloud.domain.errors import ServiceError, not_found
from muse_cloud.domain.identities import Caller, ScopedCaller
from muse_cloud.domain.repos import Visibility
from muse_cloud.domain.roles import Role, role_at_least


def within_scope(caller: Caller, needed: Role) -> bool:
    return not isinstance(caller, ScopedCaller) or role_at_least(caller.scope, needed)


@dataclass(frozen=True)
class RepoAccess:
    """What the policy needs to know about a repository, as seen by one caller."""

    owner: str
    visibility: Visibility
    collaborator_role: Role | None = None


def _is_owner(caller: Caller, access: RepoAccess) -> bool:
    return not caller.is_anonymous and caller.handle == access.owner


def can_read(caller: Caller, access: RepoAccess) -> bool:
    return (
        access.visibility == "public"
        or caller.is_admin
        or _is_owner(caller, access)
        or role_at_least(access.collaborator_role, "read")
    )


def can_write(caller: Caller, access: RepoAccess) -> bool:
    return within_scope(caller, "write") and (
        caller.is_admin
        or _is_owner(caller, access)
        or role_at_least(access.collaborator_role, "write")
    )


def can_admin(caller: Caller, access: RepoAccess) -> bool:
    return within_scope(caller, "admin") and (
        caller.is_admin
        or _is_owner(caller, access)
        or role_at_least(access.collaborator_role, "admin")
    )


def _forbidden(caller: Caller, action: str, item: str | None) -> ServiceError:
    who = "an anonymous caller" if caller.is_anonymous else f"{caller.handle!r}"
    return ServiceError("forbidden", f"{who} may not {action} this repository", item)


def require_read(caller: Caller, access: RepoAccess, item: str | None = None) -> None:
    if not can_read(caller, access):
        raise not_found("repository", item)


def require_write(caller: Caller, access: RepoAccess, item: str | None = None) -> None:
    require_read(caller, access, item)
    if not can_write(caller, access):
        raise _forbidden(caller, "push to", item)


def require_admin(caller: Caller, access: RepoAccess, item: str | None = None) -> None:
    require_read(caller, access, item)
    if not can_admin(caller, access):
        raise _forbidden(caller, "administer", item)


def require_create(caller: Caller, owner: str) -> None:
    if caller.is_anonymous:
        raise ServiceError("auth_required", "creating a repository needs a signed request")
    if not within_scope(caller, "write") or not (caller.is_admin or caller.handle == owner):
        raise ServiceError(
            "forbidden", f"{caller.handle!r} may not create repositories for {owner!r}", owner
        )


def require_site_admin(caller: Caller, action: str) -> None:
    """Site-wide administration: an admin identity, through MSign or an ``admin`` token."""
    if caller.is_anonymous:
        raise ServiceError("auth_required", f"{action} needs a signed request")
    if not (caller.is_admin and within_scope(caller, "admin")):
        raise ServiceError("forbidden", f"only an admin may {action}", caller.handle)
