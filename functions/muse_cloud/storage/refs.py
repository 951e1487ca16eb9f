"""Branch refs: one item per branch, moved only by compare-and-swap.

A client keeps refs as files in directories, so ``a`` and ``a/b`` cannot both be branches, and
that rule is part of the conditional write, not only of a read before it: the ref item of every
directory of a branch counts the branches below it (``below``). Creating a branch puts its ref
only if no ref item is there or the one there counts no branch below, and adds one to the count
of each of its directories only if that directory is no branch, all in one transaction. Of two
pushes creating ``x`` and ``x/y`` at once, one transaction sees the other's item and fails.

An item that is only a directory has no ``commit_id`` and is no branch. A created ref carries
``counted`` (it is in its directories' counts); refs written before the counts existed lack it
and are in no count. The heads read that plans every push still refuses names nested with
those (they were committed before the read, so it sees them); the counts are needed only for
two creations racing, and both of those write them. A ref deletion (no route deletes refs yet)
must delete the ref and, when it carries ``counted``, take one off each directory's count in
the same transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from muse_cloud.storage import keys
from muse_cloud.storage.backend import (
    NEW_ITEM,
    TRANSACTION_MAX,
    Absent,
    Action,
    Change,
    ConditionFailed,
    Equals,
    Put,
    Table,
    Update,
    all_of,
    any_of,
)

# Nothing is there, or only a directory with no branch below it.
_NOTHING_BELOW = any_of(NEW_ITEM, all_of(Absent("commit_id"), Equals("below", 0)))


@dataclass(frozen=True)
class RefUpdate:
    branch: str
    expected: str | None
    new: str
    done: bool = False  # already applied by an earlier run of the same push


def directories(branch: str) -> list[str]:
    """The directories a branch's ref file lives in: ``a/b/c`` lives in ``a`` and ``a/b``."""
    parts = branch.split("/")
    return ["/".join(parts[:end]) for end in range(1, len(parts))]


def _directory_counts(updates: Sequence[RefUpdate]) -> Counter[str]:
    """How many created branches each directory gains."""
    return Counter(d for u in updates if u.expected is None for d in directories(u.branch))


def transaction_size(updates: Sequence[RefUpdate]) -> int:
    """The actions moving ``updates`` at once takes: one per ref, one per directory gaining a
    branch (a transaction holds at most ``TRANSACTION_MAX``)."""
    return len(updates) + len(_directory_counts(updates))


@dataclass
class RefStore:
    table: Table

    def heads(self, repo_id: str) -> dict[str, str]:
        items = self.table.query(keys.repo_partition(repo_id), keys.REF_SK)
        return {
            i["sk"].removeprefix(keys.REF_SK): i["commit_id"] for i in items if "commit_id" in i
        }

    def get(self, repo_id: str, branch: str) -> str | None:
        item = self.table.get(keys.ref(repo_id, branch))
        return item.get("commit_id") if item else None

    def compare_and_swap(self, repo_id: str, updates: list[RefUpdate], push_id: str) -> bool:
        """Move every ref in ``updates`` at once, each only if it still points where expected,
        and create each new one only if no branch is its directory or lives in it.

        One transaction (``transaction_size`` actions, at most ``TRANSACTION_MAX``), so a push
        that moves several branches moves all of them or none; False when a condition failed:
        another push moved a ref first, or created a branch nested with a new one.
        """
        now = datetime.now(UTC).isoformat()
        actions: list[Action] = [_ref_write(repo_id, u, push_id, now) for u in updates]
        for directory, created in sorted(_directory_counts(updates).items()):
            actions.append(
                Change(
                    keys.ref(repo_id, directory),
                    Update(add={"below": created}),
                    Absent("commit_id"),
                )
            )
        assert len(actions) <= TRANSACTION_MAX, "refused before writing by the ingestion plan"
        try:
            if len(actions) > 1:
                self.table.transact(actions)
            elif isinstance(actions[0], Put):
                # One top-level branch, or one move, needs no transaction (which costs double).
                self.table.put(actions[0].item, actions[0].condition)
            else:
                change = actions[0]
                assert isinstance(change, Change)
                self.table.change(change.key, change.update, change.condition)
        except ConditionFailed:
            return False
        return True


def _ref_write(repo_id: str, update: RefUpdate, push_id: str, now: str) -> Action:
    moved = {"commit_id": update.new, "updated_at": now, "push_id": push_id}
    if update.expected is None:
        item = {**keys.ref(repo_id, update.branch), **moved, "counted": True}
        return Put(item, _NOTHING_BELOW)
    # An update, not a put: a move keeps whatever else the item holds (``counted``).
    return Change(
        keys.ref(repo_id, update.branch), Update(set=moved), Equals("commit_id", update.expected)
    )
