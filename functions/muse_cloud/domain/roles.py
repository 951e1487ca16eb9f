"""What a collaborator, or a token's scope, may do in a repository: read < write < admin."""

from __future__ import annotations

from typing import Final, Literal, get_args

from muse_cloud.domain.errors import ServiceError

Role = Literal["read", "write", "admin"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
_RANK: Final[dict[Role, int]] = {role: rank for rank, role in enumerate(ROLES)}


def parse_role(text: str) -> Role:
    for role in ROLES:
        if text == role:
            return role
    raise ServiceError("invalid_role", f"role must be one of {', '.join(ROLES)}", text)


def role_at_least(role: Role | None, needed: Role) -> bool:
    return role is not None and _RANK[role] >= _RANK[needed]
