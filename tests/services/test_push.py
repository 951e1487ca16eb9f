"""The push flow's service (presign, upload, unpack) on in-memory stores: who may push, the
fast-forward rule, and a forced push of a pack already refused."""

from __future__ import annotations

import pytest
from histories import linear_history

from muse_cloud.api.statuses import http_status
from muse_cloud.composition import Services
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import Caller
from muse_cloud.domain.protection import DEFAULT_BRANCH_PATTERN, BranchRule
from muse_cloud.domain.pushes import PushRecord
from muse_cloud.domain.repos import Repo
from muse_cloud.storage.layout import UploadKey
from muse_core.mpack import encode_mpack, mpack_key

from .conftest import ADMIN, OLIVIA, STRANGER


def push(
    services: Services,
    caller: Caller,
    repo: Repo,
    pack: dict[str, object],
    head: str,
    force: bool = False,
) -> PushRecord:
    """What a client does: presign, PUT the bytes to the URL, ask for the ingestion."""
    data = encode_mpack(pack)
    key = mpack_key(data)
    owner, name = repo.owner, repo.name
    presigned = services.push.presign(caller, owner, name, key, len(data), "main", head, force)
    assert presigned.headers["Content-Length"] == str(len(data))
    services.stores.packs.put_upload(UploadKey(repo.repo_id, key.removeprefix("sha256:")), data)
    return services.push.unpack(caller, owner, name, key, "main", head, force)


def refused(call: object, *args: object) -> tuple[int, str]:
    with pytest.raises(ServiceError) as caught:
        call(*args)  # type: ignore[operator]
    return http_status(caught.value), caught.value.code


def test_fast_forward_only_unless_forced(services: Services, repo: Repo) -> None:
    history = linear_history(commits=2)
    push(services, OLIVIA, repo, history.pack(), history.head)
    side = history.add({"tracks/x.mid": b"other"}, parent=history.order[0])
    diverged = history.pack({"main": side}, have=[history.order[0]])
    assert refused(push, services, OLIVIA, repo, diverged, side) == (409, "non_fast_forward")
    assert services.stores.refs.heads(repo.repo_id) == {"main": history.order[1]}
    # Forced: the default branch is protected against it until its rule allows it.
    assert refused(push, services, OLIVIA, repo, diverged, side, True) == (403, "branch_protected")
    assert services.stores.refs.heads(repo.repo_id) == {"main": history.order[1]}
    allowed = BranchRule(DEFAULT_BRANCH_PATTERN, force_push=True)
    services.branches.protect(OLIVIA, repo.repo_id, [allowed], None)
    # The same bytes again, forced: presigning starts the refused push anew.
    forced = push(services, OLIVIA, repo, diverged, side, force=True)
    assert forced.state == "ok" and forced.result is not None
    assert forced.result.first is not None and forced.result.first.previous_head == history.order[1]
    assert services.stores.refs.heads(repo.repo_id) == {"main": side}


def test_who_may_push(services: Services) -> None:
    public = services.repos.create(OLIVIA, "olivia", "songs", "public", False)
    private = services.repos.create(OLIVIA, "olivia", "secret", "private", False)
    pack = linear_history().pack()
    head = str(pack["commits"][-1]["commit_id"])
    assert refused(push, services, STRANGER, public, pack, head) == (403, "forbidden")
    # A private repository does not exist for those who may not read it.
    assert refused(push, services, STRANGER, private, pack, head) == (404, "not_found")
    services.repos.set_collaborator(OLIVIA, public.repo_id, "stan", "write")
    assert push(services, STRANGER, public, pack, head).state == "ok"
    assert push(services, ADMIN, private, pack, head).state == "ok"


def test_a_pack_uploaded_for_another_head_is_refused(services: Services, repo: Repo) -> None:
    history = linear_history(commits=3)
    pack = history.pack()
    push(services, OLIVIA, repo, pack, history.head)
    data = encode_mpack(pack)
    key = mpack_key(data)
    answer = refused(
        services.push.unpack, OLIVIA, "olivia", "songs", key, "main", history.order[0], False
    )
    assert answer == (409, "push_mismatch")
