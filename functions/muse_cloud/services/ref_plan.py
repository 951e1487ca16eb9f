"""Which refs a verified push moves, and from where: the fast-forward rule and the rules for a
rerun, as pure functions over the heads read and the commit graph.

A rerun (after a crash, or a redelivered event) finds the refs as the earlier run left them, and
the heads that run planned to move from (``previous``) on its push record; the plan it makes
must converge on the earlier run's result without undoing anyone else's push.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from muse_cloud.domain.errors import ServiceError
from muse_cloud.services.ref_changes import REF_ACTIONS_MAX
from muse_cloud.storage.refs import RefUpdate, transaction_size
from muse_core.ancestry import is_ancestor

# Parents and generation of commits, by id: what ``is_ancestor`` walks.
Lookup = Callable[[Collection[str]], Mapping[str, tuple[tuple[str, ...], int]]]


def plan_ref_updates(
    targets: Mapping[str, str],
    heads: Mapping[str, str],
    previous: Mapping[str, str | None],
    force: bool,
    lookup: Lookup,
) -> list[RefUpdate]:
    """One update per target branch, sorted by name; refuses the whole push when one branch
    may not move (a rerun's refusal is the same as its first run's)."""
    updates = [
        _plan_branch(branch, head, heads, previous, force, lookup)
        for branch, head in sorted(targets.items())
    ]
    refuse_oversized_transaction(moving(updates))
    return updates


def _plan_branch(
    branch: str,
    head: str,
    heads: Mapping[str, str],
    previous: Mapping[str, str | None],
    force: bool,
    lookup: Lookup,
) -> RefUpdate:
    current = heads.get(branch)
    rerun = branch in previous
    if current == head:
        # Already there: a rerun after the refs moved, or a push of nothing new.
        return RefUpdate(branch, previous.get(branch, current), head, done=True)
    if rerun and current is not None and is_ancestor(head, current, lookup):
        # A rerun whose earlier run moved the ref, which others have moved on from since.
        return RefUpdate(branch, previous[branch], head, done=True)
    moved_meanwhile = rerun and current != previous[branch]
    if moved_meanwhile and force and current is not None and not is_ancestor(current, head, lookup):
        # A forced rerun after others moved the ref would undo their push.
        raise ServiceError(
            "ref_conflict",
            f"branch {branch!r} moved while this push was interrupted; push again",
            branch,
        )
    refuse_nested_names(branch, heads)
    rewinds = current is not None and not is_ancestor(current, head, lookup)
    if rewinds and not force:
        raise ServiceError(
            "non_fast_forward",
            f"branch {branch!r} is at {current}, which {head} does not descend from; "
            "fetch and merge, or push with force",
            branch,
        )
    return RefUpdate(branch, current, head, forced=rewinds)


def moving(plan: list[RefUpdate]) -> list[RefUpdate]:
    return [u for u in plan if not u.done and u.expected != u.new]


def refuse_oversized_transaction(updates: list[RefUpdate]) -> None:
    """Refused before anything is written: the refs of a push move in one transaction, beside
    the ``GUARD_ACTIONS`` every ref change carries."""
    size = transaction_size(updates)
    if size > REF_ACTIONS_MAX:
        deepest = max(updates, key=lambda u: (u.expected is None, u.branch.count("/")))
        raise ServiceError(
            "limit_exceeded",
            f"moving these {len(updates)} branches takes {size} conditional writes, more than "
            f"the {REF_ACTIONS_MAX} a push makes in its one transaction (a new branch takes one "
            "more per directory of its name): push fewer new branches at once",
            deepest.branch,
        )


def refuse_nested_names(branch: str, heads: Collection[str]) -> None:
    """``a`` and ``a/b`` cannot both be branches: a client keeps refs as files in directories."""
    for other in heads:
        if other != branch and (other.startswith(branch + "/") or branch.startswith(other + "/")):
            raise ServiceError(
                "branch_name_conflict",
                f"branch {branch!r} cannot live beside the existing branch {other!r}",
                branch,
            )
