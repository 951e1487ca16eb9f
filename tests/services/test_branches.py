"""Deleting branches, the default branch and protected-branch rules, on in-memory stores: what
each refuses and why, and the races where a rule or a ref changes between a change's judgement
and its transaction (played out at exactly that point, by the other party's real call)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from histories import History, linear_history

from muse_cloud.composition import Services
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import Caller
from muse_cloud.domain.protection import DEFAULT_BRANCH_PATTERN, BranchRule
from muse_cloud.domain.pushes import PushRecord
from muse_cloud.domain.repos import Repo
from muse_cloud.storage import keys
from muse_cloud.storage.layout import UploadKey
from muse_cloud.storage.refs import RefStore
from muse_core.mpack import encode_mpack, mpack_key

from .conftest import ADMIN, OLIVIA, STRANGER
from .test_push import refused

WRITER = STRANGER  # made a writer of the repository below


def push(
    services: Services,
    caller: Caller,
    repo: Repo,
    history: History,
    branch: str,
    force: bool = False,
    have: tuple[str, ...] = (),
) -> PushRecord:
    """Presign, upload and unpack ``history``'s head onto ``branch``, as a client does."""
    data = encode_mpack(history.pack({branch: history.head}, have=list(have)))
    key = mpack_key(data)
    services.push.presign(
        caller, repo.owner, repo.name, key, len(data), branch, history.head, force
    )
    services.stores.packs.put_upload(UploadKey(repo.repo_id, key.removeprefix("sha256:")), data)
    return services.push.unpack(caller, repo.owner, repo.name, key, branch, history.head, force)


@pytest.fixture
def history(services: Services, repo: Repo) -> History:
    """main and topic/x at the same two commits; a writer besides the owner."""
    services.repos.set_collaborator(OLIVIA, repo.repo_id, WRITER.handle or "", "write")
    history = linear_history(commits=2)
    push(services, OLIVIA, repo, history, "main")
    push(services, OLIVIA, repo, history, "topic/x")
    return history


def delete(services: Services, caller: Caller, repo: Repo, branch: str, head: str) -> Any:
    return services.branches.delete(caller, repo.owner, repo.name, branch, head)


def heads(services: Services, repo: Repo) -> dict[str, str]:
    return services.stores.refs.heads(repo.repo_id)


def outbox_events(services: Services) -> list[dict[str, Any]]:
    return [e.detail() for o in services.stores.events.pending() for e in o.events]


# --- deletion -------------------------------------------------------------------------------


def test_a_branch_is_deleted_only_at_the_head_expected(
    services: Services, repo: Repo, history: History
) -> None:
    moved = history.add({"b.mid": b"b"})
    push(services, OLIVIA, repo, history, "topic/x", have=(history.order[1],))
    stale = history.order[1]
    assert refused(delete, services, WRITER, repo, "topic/x", stale) == (409, "ref_conflict")
    assert heads(services, repo)["topic/x"] == moved
    services.events.publish_pending()

    event = delete(services, WRITER, repo, "topic/x", moved)

    assert heads(services, repo) == {"main": stale}
    assert (event.ref, event.before, event.after, event.pusher) == ("topic/x", moved, None, "stan")
    assert [e["event_id"] for e in outbox_events(services)] == [event.event_id]
    assert refused(delete, services, WRITER, repo, "topic/x", moved) == (404, "not_found")


def test_deleting_a_nested_branch_frees_its_directories(
    services: Services, repo: Repo, history: History
) -> None:
    head = history.head
    assert refused(push, services, OLIVIA, repo, history, "topic") == (409, "branch_name_conflict")
    delete(services, OLIVIA, repo, "topic/x", head)
    directory = services.stores.table.get(keys.ref(repo.repo_id, "topic"))
    assert directory is not None and directory["below"] == 0 and "commit_id" not in directory

    assert push(services, OLIVIA, repo, history, "topic").state == "ok"
    assert heads(services, repo) == {"main": head, "topic": head}


def test_the_default_branch_cannot_be_deleted_while_it_is_the_default(
    services: Services, repo: Repo, history: History
) -> None:
    allowed = [BranchRule(DEFAULT_BRANCH_PATTERN, deletion=True)]
    services.branches.protect(OLIVIA, repo.repo_id, allowed, None)
    assert refused(delete, services, OLIVIA, repo, "main", history.head) == (409, "default_branch")

    changed = services.branches.set_default(OLIVIA, repo.repo_id, "topic/x")

    assert changed.default_branch == "topic/x"
    delete(services, OLIVIA, repo, "main", history.head)
    assert heads(services, repo) == {"topic/x": history.head}


def test_who_may_delete(services: Services, repo: Repo, history: History) -> None:
    reader = Caller("rea", "sha256:" + "04" * 32)
    services.repos.set_collaborator(OLIVIA, repo.repo_id, "rea", "read")
    head = history.head
    assert refused(delete, services, reader, repo, "topic/x", head) == (403, "forbidden")
    rules = [BranchRule("topic/*", deletion=True, push="admins")]
    services.branches.protect(OLIVIA, repo.repo_id, rules, None)
    with pytest.raises(ServiceError) as caught:
        delete(services, WRITER, repo, "topic/x", head)
    assert caught.value.code == "branch_protected" and caught.value.item == "topic/x"
    assert "'topic/*': only the owner and admins" in caught.value.message
    delete(services, ADMIN, repo, "topic/x", head)
    assert "topic/x" not in heads(services, repo)


@pytest.mark.parametrize(
    ("branch", "head", "code"),
    [("a//b", "0" * 64, "invalid_branch_name"), ("topic/x", "not-an-id", "invalid_id")],
)
def test_deletion_refuses_what_cannot_be_a_branch_or_head(
    services: Services, repo: Repo, history: History, branch: str, head: str, code: str
) -> None:
    assert refused(delete, services, OLIVIA, repo, branch, head) == (422, code)


# --- the default branch -----------------------------------------------------------------------


def test_the_default_branch_is_an_existing_branch_and_its_rule_follows_it(
    services: Services, repo: Repo, history: History
) -> None:
    assert refused(services.branches.set_default, WRITER, repo.repo_id, "topic/x") == (
        403,
        "forbidden",
    )
    assert refused(services.branches.set_default, OLIVIA, repo.repo_id, "nope") == (
        404,
        "not_found",
    )
    services.branches.set_default(OLIVIA, repo.repo_id, "topic/x")
    rewritten = linear_history(commits=1, tag="other")

    # main is no longer covered by ':default'; topic/x is.
    assert push(services, OLIVIA, repo, rewritten, "main", force=True).state == "ok"
    assert refused(push, services, OLIVIA, repo, rewritten, "topic/x", True) == (
        403,
        "branch_protected",
    )
    assert heads(services, repo) == {"main": rewritten.head, "topic/x": history.head}


# --- rules --------------------------------------------------------------------------------------


def test_rules_are_read_and_replaced_by_owners_and_admins_only(
    services: Services, repo: Repo, history: History
) -> None:
    unset = services.branches.protection(OLIVIA, repo.repo_id)
    assert (unset.version, unset.rules) == (0, (BranchRule(DEFAULT_BRANCH_PATTERN),))
    assert refused(services.branches.protection, WRITER, repo.repo_id) == (403, "forbidden")
    rules = [BranchRule("release/*", push="admins")]
    assert refused(services.branches.protect, WRITER, repo.repo_id, rules, None) == (
        403,
        "forbidden",
    )

    first = services.branches.protect(ADMIN, repo.repo_id, rules, 0)
    assert (first.version, first.rules) == (1, tuple(rules))
    assert refused(services.branches.protect, OLIVIA, repo.repo_id, [], 0) == (
        409,
        "protection_conflict",
    )
    assert services.branches.protect(OLIVIA, repo.repo_id, [], None).version == 2
    # No rule at all: the default branch takes force pushes (but is still never deleted).
    assert push(services, OLIVIA, repo, linear_history(1, tag="y"), "main", force=True).state


@pytest.mark.parametrize(
    "rules",
    [
        [BranchRule("")],
        [BranchRule("a\nb")],
        [BranchRule(":main")],
        [BranchRule("x"), BranchRule("x", deletion=True)],
        [BranchRule(f"r{n}") for n in range(51)],
    ],
)
def test_rules_that_cannot_be_stored_are_refused(
    services: Services, repo: Repo, rules: list[BranchRule]
) -> None:
    assert refused(services.branches.protect, OLIVIA, repo.repo_id, rules, None) == (
        422,
        "invalid_protection",
    )
    assert services.branches.protection(OLIVIA, repo.repo_id).version == 0


def test_patterns_cover_nested_names_and_admins_only_rules_stop_writers(
    services: Services, repo: Repo, history: History
) -> None:
    rules = [BranchRule(DEFAULT_BRANCH_PATTERN), BranchRule("release/*", push="admins")]
    services.branches.protect(OLIVIA, repo.repo_id, rules, None)
    release = linear_history(commits=1, tag="rel")
    with pytest.raises(ServiceError) as caught:
        push(services, WRITER, repo, release, "release/1/hotfix")
    assert caught.value.code == "branch_protected"
    assert caught.value.message == (
        "branch 'release/1/hotfix' is protected by rule 'release/*': "
        "only the owner and admins may change it"
    )
    assert push(services, WRITER, repo, release, "releases").state == "ok"
    assert push(services, OLIVIA, repo, release, "release/1/hotfix").state == "ok"
    assert "release/1/hotfix" in heads(services, repo)


# --- races: the other party acts between the judgement and the transaction ---------------


@contextmanager
def before_first(
    monkeypatch: pytest.MonkeyPatch, method: str, other: Callable[[], object]
) -> Iterator[list[object]]:
    """``other()`` runs right before the first call of ``RefStore.<method>``: after the
    change was judged and planned (and, for ``_transact``, its ref read), right before its
    transaction. Yields what ``other`` returned."""
    real = getattr(RefStore, method)
    done: list[object] = []
    started = False

    def then_call(*args: Any, **kwargs: Any) -> Any:
        nonlocal started
        if not started:
            started = True  # before other(), whose own calls go straight through
            done.append(other())
        return real(*args, **kwargs)

    monkeypatch.setattr(RefStore, method, then_call)
    yield done
    monkeypatch.setattr(RefStore, method, real)


@pytest.fixture
def rewritten(services: Services, repo: Repo, history: History) -> History:
    """A history main does not hold, and the default rule allowing force pushes (events so
    far published)."""
    allowed = [BranchRule(DEFAULT_BRANCH_PATTERN, force_push=True)]
    services.branches.protect(OLIVIA, repo.repo_id, allowed, None)
    services.events.publish_pending()
    return linear_history(commits=1, tag="rewrite")


def test_a_force_push_judged_before_protection_was_turned_on_is_refused(
    services: Services,
    repo: Repo,
    history: History,
    rewritten: History,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def protect() -> object:
        denied = [BranchRule(DEFAULT_BRANCH_PATTERN, force_push=False)]
        return services.branches.protect(OLIVIA, repo.repo_id, denied, None).version

    with before_first(monkeypatch, "compare_and_swap", protect) as meanwhile:
        outcome = refused(push, services, WRITER, repo, rewritten, "main", True)
    assert meanwhile == [2]
    assert outcome == (403, "branch_protected")
    assert heads(services, repo)["main"] == history.head
    assert outbox_events(services) == []


def test_a_force_push_judged_before_another_rule_changed_is_judged_again(
    services: Services,
    repo: Repo,
    history: History,
    rewritten: History,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rule change that still allows the push costs it one more judgement, not the push."""
    more = [BranchRule(DEFAULT_BRANCH_PATTERN, force_push=True), BranchRule("release/*")]

    with before_first(
        monkeypatch,
        "compare_and_swap",
        lambda: services.branches.protect(OLIVIA, repo.repo_id, more, None),
    ):
        record = push(services, WRITER, repo, rewritten, "main", force=True)

    assert record.state == "ok" and heads(services, repo)["main"] == rewritten.head
    [event] = outbox_events(services)
    assert (event["forced"], event["before"], event["after"]) == (
        True,
        history.head,
        rewritten.head,
    )


def test_a_delete_racing_a_push_of_the_branch_leaves_one_winner(
    services: Services, repo: Repo, history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.events.publish_pending()
    before = history.head
    after = history.add({"c.mid": b"c"})

    # The push moves the branch after the deletion was judged: the deletion loses.
    def push_meanwhile() -> object:
        return push(services, OLIVIA, repo, history, "topic/x", have=(before,)).state

    with before_first(monkeypatch, "_transact", push_meanwhile) as meanwhile:
        lost = refused(delete, services, WRITER, repo, "topic/x", before)
    assert meanwhile == ["ok"] and lost == (409, "ref_conflict")
    assert heads(services, repo)["topic/x"] == after

    # The deletion lands after the push was planned: the push loses.
    following = history.add({"d.mid": b"d"})
    with before_first(
        monkeypatch, "compare_and_swap", lambda: delete(services, WRITER, repo, "topic/x", after)
    ):
        outcome = refused(push, services, OLIVIA, repo, history, "topic/x", False, (after,))
    assert outcome == (409, "ref_conflict")
    assert "topic/x" not in heads(services, repo)
    assert following not in heads(services, repo).values()
    changes = [(e["ref"], e["before"], e["after"]) for e in outbox_events(services)]
    assert changes == [("topic/x", before, after), ("topic/x", after, None)]


def test_making_a_branch_the_default_while_it_is_deleted_leaves_one_winner(
    services: Services, repo: Repo, history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    def make_it_default() -> object:
        return services.branches.set_default(OLIVIA, repo.repo_id, "topic/x").default_branch

    with before_first(monkeypatch, "_transact", make_it_default) as meanwhile:
        outcome = refused(delete, services, OLIVIA, repo, "topic/x", history.head)
    assert meanwhile == ["topic/x"] and outcome == (409, "default_branch")
    assert heads(services, repo) == {"main": history.head, "topic/x": history.head}
