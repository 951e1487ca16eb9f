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
two creations racing, and both of those write them. A deletion deletes the ref and, when it
carries ``counted``, takes one off each directory's count in the same transaction; a directory
item left counting nothing stays (it holds no branch, and a creation takes it as nothing).

Every move and deletion also carries the caller's own actions (``also``): the checks that the
rules it was judged under still hold, and the outbox item of its events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from muse_cloud.storage import keys
from muse_cloud.storage.backend import (
    NEW_ITEM,
    TRANSACTION_MAX,
    Absent,
    Action,
    Change,
    Check,
    ConditionFailed,
    Delete,
    Equals,
    Exists,
    Item,
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
    forced: bool = False  # the new head does not descend from the expected one


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
        return _heads(self.table.query(keys.repo_partition(repo_id), keys.REF_SK))

    def heads_of(self, repo_id: str, branches: Collection[str]) -> dict[str, str]:
        """The heads of ``branches`` that exist, read by key: a Query of ``heads`` reads every
        branch of the repository."""
        return _heads(self.table.get_many((keys.ref(repo_id, b) for b in branches), ("commit_id",)))

    def get(self, repo_id: str, branch: str) -> str | None:
        item = self.table.get(keys.ref(repo_id, branch))
        return item.get("commit_id") if item else None

    def is_branch(self, repo_id: str, branch: str) -> Check:
        """The transaction action that holds only while ``branch`` exists."""
        return Check(keys.ref(repo_id, branch), Exists("commit_id"))

    def compare_and_swap(
        self, repo_id: str, updates: list[RefUpdate], push_id: str, also: Sequence[Action] = ()
    ) -> bool:
        """Move every ref in ``updates`` at once, each only if it still points where expected,
        and create each new one only if no branch is its directory or lives in it.

        One transaction (``transaction_size`` actions and ``also``, at most
        ``TRANSACTION_MAX``), so a push that moves several branches moves all of them or none;
        False when a condition failed: another push moved a ref first, created a branch nested
        with a new one, or one of ``also`` did not hold.
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
        return self._transact([*actions, *also])

    def delete(self, repo_id: str, branch: str, expected: str, also: Sequence[Action]) -> bool:
        """Delete the branch only if it still points at ``expected``, with ``also``; False when
        it does not (moved, or gone) or one of ``also`` did not hold."""
        item = self.table.get(keys.ref(repo_id, branch))
        if item is None or item.get("commit_id") != expected:
            return False
        counted = "counted" in item
        actions: list[Action] = [
            Delete(
                keys.ref(repo_id, branch),
                all_of(
                    Equals("commit_id", expected),
                    Exists("counted") if counted else Absent("counted"),
                ),
            )
        ]
        if counted:
            actions += [
                Change(keys.ref(repo_id, d), Update(add={"below": -1}), Exists("below"))
                for d in directories(branch)
            ]
        return self._transact([*actions, *also])

    def _transact(self, actions: list[Action]) -> bool:
        assert len(actions) <= TRANSACTION_MAX, "refused before writing by the ingestion plan"
        try:
            self.table.transact(actions)
        except ConditionFailed:
            return False
        return True


def _heads(items: Iterable[Item]) -> dict[str, str]:
    """Branch heads by name; a directory's item has no commit."""
    return {i["sk"].removeprefix(keys.REF_SK): i["commit_id"] for i in items if "commit_id" in i}


def _ref_write(repo_id: str, update: RefUpdate, push_id: str, now: str) -> Action:
    moved = {"commit_id": update.new, "updated_at": now, "push_id": push_id}
    if update.expected is None:
        item = {**keys.ref(repo_id, update.branch), **moved, "counted": True}
        return Put(item, _NOTHING_BELOW)
    # An update, not a put: a move keeps whatever else the item holds (``counted``).
    return Change(
        keys.ref(repo_id, update.branch), Update(set=moved), Equals("commit_id", update.expected)
    )
