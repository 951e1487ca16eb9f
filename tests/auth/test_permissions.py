"""The permission matrix of protocol section 5, over every kind of caller and both visibilities."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from muse_cloud.api.statuses import http_status
from muse_cloud.auth.permissions import (
    RepoAccess,
    can_admin,
    can_read,
    can_write,
    require_admin,
    require_create,
    require_read,
    require_write,
)
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import ANONYMOUS, Caller
from muse_cloud.domain.repos import Visibility
from muse_cloud.domain.roles import Role, parse_role


def signed(handle: str, *, is_admin: bool = False, is_agent: bool = False) -> Caller:
    return Caller(handle, f"sha256:{handle}", is_agent=is_agent, is_admin=is_admin)


OWNER = "alice"
# name: (caller, collaborator role, (read, write, admin) on public, the same on private)
CASES: dict[str, tuple[Caller, Role | None, tuple[bool, ...], tuple[bool, ...]]] = {
    "anonymous": (ANONYMOUS, None, (True, False, False), (False, False, False)),
    "owner": (signed(OWNER), None, (True, True, True), (True, True, True)),
    "reader": (signed("bob"), "read", (True, False, False), (True, False, False)),
    "writer": (signed("carol"), "write", (True, True, False), (True, True, False)),
    "admin-collaborator": (signed("dave"), "admin", (True, True, True), (True, True, True)),
    "global-admin": (signed("root", is_admin=True), None, (True, True, True), (True, True, True)),
    "stranger": (signed("eve"), None, (True, False, False), (False, False, False)),
    "agent": (signed("bot", is_agent=True), None, (True, False, False), (False, False, False)),
    "agent-writer": (
        signed("bot", is_agent=True),
        "write",
        (True, True, False),
        (True, True, False),
    ),
    "owner-agent": (signed(OWNER, is_agent=True), None, (True, True, True), (True, True, True)),
}
MATRIX = [
    pytest.param(caller, role, visibility, expected, id=f"{name}-{visibility}")
    for name, (caller, role, public, private) in CASES.items()
    for visibility, expected in (("public", public), ("private", private))
]


def status(check: Callable[..., object], *args: object) -> int | None:
    try:
        check(*args)
    except ServiceError as error:
        return http_status(error)
    return None


@pytest.mark.parametrize(("caller", "role", "visibility", "expected"), MATRIX)
def test_matrix(
    caller: Caller, role: Role | None, visibility: Visibility, expected: tuple[bool, ...]
) -> None:
    access = RepoAccess(OWNER, visibility, role)
    may_read, may_write, may_admin = expected
    assert (can_read(caller, access), can_write(caller, access), can_admin(caller, access)) == (
        may_read,
        may_write,
        may_admin,
    )
    hidden = None if may_read else 404
    refused = 404 if not may_read else 403
    assert status(require_read, caller, access, "alice/songs") == hidden
    assert status(require_write, caller, access, "alice/songs") == (None if may_write else refused)
    assert status(require_admin, caller, access, "alice/songs") == (None if may_admin else refused)


def test_private_repo_answers_like_a_missing_one() -> None:
    access = RepoAccess(OWNER, "private")
    for caller in (ANONYMOUS, signed("eve")):
        for check in (require_read, require_write, require_admin):
            with pytest.raises(ServiceError) as caught:
                check(caller, access, "alice/secret")
            assert (http_status(caught.value), caught.value.code) == (404, "not_found")


def test_visible_but_not_writable_is_forbidden() -> None:
    with pytest.raises(ServiceError) as caught:
        require_write(ANONYMOUS, RepoAccess(OWNER, "public"), "alice/songs")
    assert (http_status(caught.value), caught.value.code) == (403, "forbidden")


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        (ANONYMOUS, (401, "auth_required")),
        (signed(OWNER), None),
        (signed(OWNER, is_agent=True), None),
        (signed("root", is_admin=True), None),
        (signed("eve"), (403, "forbidden")),
        (signed("bot", is_agent=True), (403, "forbidden")),
    ],
)
def test_require_create(caller: Caller, expected: tuple[int, str] | None) -> None:
    try:
        require_create(caller, OWNER)
    except ServiceError as error:
        assert (http_status(error), error.code) == expected
    else:
        assert expected is None


def test_anonymous_caller() -> None:
    assert ANONYMOUS.is_anonymous
    assert not signed("bob").is_anonymous


def test_parse_role() -> None:
    assert [parse_role(text) for text in ("read", "write", "admin")] == ["read", "write", "admin"]
    with pytest.raises(ServiceError) as caught:
        parse_role("owner")
    assert (http_status(caught.value), caught.value.code) == (400, "invalid_role")
