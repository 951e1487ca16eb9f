"""Protected branches: a repository's rules, which branches each covers, and what it forbids.

A rule covers the branches its pattern matches (``fnmatch``, case-sensitive; ``*`` matches
``/`` too, so ``release/*`` covers ``release/1/hotfix``) and says whether a covered branch may be
force-pushed, deleted, and who may move it at all. The pattern ``:default`` covers the
repository's default branch, whichever it is: ``:`` is in no branch name (``muse_core.paths``),
so it is no name a branch could have. A repository that never set rules has one, ``:default``:
no force push, no deletion, writers push.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from muse_cloud.domain.errors import ServiceError

PushRight = Literal["writers", "admins"]
RefChangeKind = Literal["push", "force_push", "delete"]

DEFAULT_BRANCH_PATTERN = ":default"
MAX_RULES = 50
MAX_PATTERN_LENGTH = 255


@dataclass(frozen=True)
class BranchRule:
    pattern: str
    # What a covered branch allows; everything else about it is refused.
    force_push: bool = False
    deletion: bool = False
    push: PushRight = "writers"

    def covers(self, branch: str, default_branch: str) -> bool:
        if self.pattern == DEFAULT_BRANCH_PATTERN:
            return branch == default_branch
        return fnmatch.fnmatchcase(branch, self.pattern)


@dataclass(frozen=True)
class Protection:
    """A repository's rules; ``version`` counts their changes (0: never set), and a ref change
    goes through only while the version it was judged under is the current one."""

    rules: tuple[BranchRule, ...]
    version: int = 0


UNSET = Protection((BranchRule(DEFAULT_BRANCH_PATTERN),))


def validate_rules(rules: Sequence[BranchRule]) -> tuple[BranchRule, ...]:
    if len(rules) > MAX_RULES:
        raise ServiceError(
            "invalid_protection", f"at most {MAX_RULES} rules, not {len(rules)}", str(len(rules))
        )
    seen: set[str] = set()
    for rule in rules:
        pattern = rule.pattern
        if not 1 <= len(pattern) <= MAX_PATTERN_LENGTH or not pattern.isprintable():
            raise ServiceError(
                "invalid_protection",
                f"a pattern is 1 to {MAX_PATTERN_LENGTH} printable characters",
                pattern,
            )
        if ":" in pattern and pattern != DEFAULT_BRANCH_PATTERN:
            raise ServiceError(
                "invalid_protection",
                f"':' is in no branch name, so this pattern covers nothing (only "
                f"{DEFAULT_BRANCH_PATTERN!r} is taken)",
                pattern,
            )
        if pattern in seen:
            raise ServiceError("invalid_protection", "two rules with one pattern", pattern)
        seen.add(pattern)
    return tuple(rules)


def judge(
    protection: Protection,
    default_branch: str,
    branch: str,
    change: RefChangeKind,
    by_admin: bool,
) -> None:
    """Refuse the change (``branch_protected``, naming the rule) when a rule covering the
    branch forbids it; ``by_admin``: the pusher is the owner or an admin of the repository."""
    for rule in protection.rules:
        if not rule.covers(branch, default_branch):
            continue
        if rule.push == "admins" and not by_admin:
            forbidden = "only the owner and admins may change it"
        elif change == "force_push" and not rule.force_push:
            forbidden = "no force push"
        elif change == "delete" and not rule.deletion:
            forbidden = "no deletion"
        else:
            continue
        raise ServiceError(
            "branch_protected",
            f"branch {branch!r} is protected by rule {rule.pattern!r}: {forbidden}",
            branch,
        )
