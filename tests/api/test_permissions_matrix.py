"""Who may do what (protocol section 5): every route against every kind of caller, for a public
and a private repository; repository creation; and objects that belong to one repository only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from histories import History, linear_history

from muse_cloud.storage.collaborators import CollaboratorStore
from muse_cloud.storage.fetch_packs import BuildAsked
from muse_cloud_cli.signer import KeyFile
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import stores
from muse_core.mpack import decode_mpack, encode_mpack

from .client import Answer, call
from .test_endpoints import bootstrap_admin, create_repo, expect_error, fetched_pack, identity, push

CALLERS = (
    "anonymous",
    "owner",
    "reader",
    "writer",
    "admin_collaborator",
    "global_admin",
    "stranger",
    "agent",
)

# Expected status per caller, in the order of CALLERS: anonymous, owner, reader, writer,
# admin collaborator, global admin, stranger, agent.
EVERYONE_200 = (200, 200, 200, 200, 200, 200, 200, 200)
READERS_200 = (404, 200, 200, 200, 200, 200, 404, 404)
PUBLIC_PUSH = (403, 200, 403, 200, 200, 200, 403, 403)
PRIVATE_PUSH = (404, 200, 403, 200, 200, 200, 404, 404)
PUBLIC_ADMIN_200 = (403, 200, 403, 403, 200, 200, 403, 403)
PRIVATE_ADMIN_200 = (404, 200, 403, 403, 200, 200, 404, 404)
PUBLIC_ADMIN_204 = (403, 204, 403, 403, 204, 204, 403, 403)
PRIVATE_ADMIN_204 = (404, 204, 403, 403, 204, 204, 404, 404)

# route: (expected on a public repository, expected on a private one)
MATRIX: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    # read routes
    "get repo": (EVERYONE_200, READERS_200),
    "get repo by slug": (EVERYONE_200, READERS_200),
    "refs": (EVERYONE_200, READERS_200),
    "log": (EVERYONE_200, READERS_200),
    "commit": (EVERYONE_200, READERS_200),
    "snapshot": (EVERYONE_200, READERS_200),
    "object": (EVERYONE_200, READERS_200),
    "fetch": (EVERYONE_200, READERS_200),
    "fetch build": (EVERYONE_200, READERS_200),
    "push status": (EVERYONE_200, READERS_200),
    # write routes
    "presign": (PUBLIC_PUSH, PRIVATE_PUSH),
    "unpack": (PUBLIC_PUSH, PRIVATE_PUSH),
    # admin routes
    "delete repo": (PUBLIC_ADMIN_204, PRIVATE_ADMIN_204),
    "list collaborators": (PUBLIC_ADMIN_200, PRIVATE_ADMIN_200),
    "set collaborator": (PUBLIC_ADMIN_200, PRIVATE_ADMIN_200),
    "remove collaborator": (PUBLIC_ADMIN_204, PRIVATE_ADMIN_204),
}


@dataclass
class Setting:
    """One repository (olivia/songs) with a pushed history, and one key per kind of caller."""

    stack: Provisioned
    visibility: str
    keys: dict[str, KeyFile | None]
    repo: dict[str, Any]
    history: History
    push_id: str
    mpack_key: str
    spares: int = 0
    collaborators: CollaboratorStore = field(default_factory=lambda: stores().collaborators)

    def with_roles(self, repo_id: str) -> None:
        for handle, role in (("rita", "read"), ("walt", "write"), ("ada", "admin")):
            self.collaborators.set_role(repo_id, handle, role)  # type: ignore[arg-type]

    def spare_repo(self) -> str:
        """A fresh repository like the main one, for a call that destroys it."""
        self.spares += 1
        owner = self.keys["owner"]
        assert owner is not None
        spare = create_repo(owner, f"spare-{self.spares}", self.visibility)
        self.with_roles(spare["repoId"])
        return str(spare["repoId"])


def _requests(s: Setting) -> dict[str, Callable[[], tuple[str, str, Any]]]:
    slug, repo_id = s.repo["fullName"], s.repo["repoId"]
    head = s.history.head
    commit = s.history.records[head]
    oid = next(iter(s.history.blobs))
    base = f"/api/repos/{repo_id}/collaborators"
    fetch_build = BuildAsked({"main": head}, [], []).request_id()

    def presign() -> tuple[str, str, Any]:
        s.spares += 1
        key = f"sha256:{s.spares:064x}"
        return "POST", f"/{slug}/push/mpack-presign", {"mpack_key": key, "size_bytes": 10}

    def remove_collaborator() -> tuple[str, str, Any]:
        s.collaborators.set_role(repo_id, "guest", "read")
        return "DELETE", f"{base}/guest", None

    return {
        "get repo": lambda: ("GET", f"/api/repos/{repo_id}", None),
        "get repo by slug": lambda: ("GET", f"/api/repos/by-slug/{slug}", None),
        "refs": lambda: ("GET", f"/{slug}/refs", None),
        "log": lambda: ("GET", f"/{slug}/log", None),
        "commit": lambda: ("GET", f"/{slug}/commits/{head}", None),
        "snapshot": lambda: ("GET", f"/{slug}/snapshots/{commit.snapshot_id}", None),
        "object": lambda: ("GET", f"/{slug}/objects/{oid}", None),
        "fetch": lambda: ("POST", f"/{slug}/fetch/mpack", {"want": [head], "have": []}),
        # The pack "fetch" built (every caller's fetch asks for the same).
        "fetch build": lambda: ("GET", f"/{slug}/fetch/builds/{fetch_build}", None),
        "push status": lambda: ("GET", f"/{slug}/push/{s.push_id}", None),
        "presign": presign,
        "unpack": lambda: (
            "POST",
            f"/{slug}/push/unpack-mpack",
            {"mpack_key": s.mpack_key, "branch": "main", "head": head},
        ),
        "delete repo": lambda: ("DELETE", f"/api/repos/{s.spare_repo()}", None),
        "list collaborators": lambda: ("GET", base, None),
        "set collaborator": lambda: ("PUT", f"{base}/guest", {"role": "read"}),
        "remove collaborator": remove_collaborator,
    }


def _setting(stack: Provisioned, visibility: str) -> Setting:
    keys: dict[str, KeyFile | None] = {
        "anonymous": None,
        "owner": identity("olivia"),
        "reader": identity("rita"),
        "writer": identity("walt"),
        "admin_collaborator": identity("ada"),
        "global_admin": bootstrap_admin(),
        "stranger": identity("sam"),
        "agent": identity("bot", is_agent=True),
    }
    owner = keys["owner"]
    assert owner is not None
    repo = create_repo(owner, "songs", visibility)
    history = linear_history(2)
    pushed = push(stack, owner, repo, encode_mpack(history.pack()))
    assert pushed.status == 200, pushed.body
    result = pushed.json()
    setting = Setting(
        stack, visibility, keys, repo, history, result["push_id"], result["mpack_key"]
    )
    setting.with_roles(repo["repoId"])
    return setting


def _check_refusal(answer: Answer, status: int) -> str | None:
    body = answer.json()
    if not isinstance(body.get("message"), str) or not body["message"]:
        return f"no message in {body}"
    code = {401: "auth_required", 403: "forbidden", 404: "not_found"}[status]
    return None if body.get("code") == code else f"code {body.get('code')!r}, wanted {code!r}"


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_every_route_against_every_caller(stack: Provisioned, visibility: str) -> None:
    setting = _setting(stack, visibility)
    requests = _requests(setting)
    assert set(requests) == set(MATRIX)
    wrong: list[str] = []
    for route, (on_public, on_private) in MATRIX.items():
        expected = on_public if visibility == "public" else on_private
        for who, status in zip(CALLERS, expected, strict=True):
            method, path, body = requests[route]()
            answer = call(method, path, body, setting.keys[who])
            if answer.status != status:
                wrong.append(
                    f"{route:20} {who:18} {answer.status} (wanted {status}) {answer.body!r}"
                )
            elif status >= 400 and (problem := _check_refusal(answer, status)):
                wrong.append(f"{route:20} {who:18} {problem}")
    assert not wrong, "\n" + "\n".join(wrong)
    # Nothing that was refused changed the repository.
    owner = setting.keys["owner"]
    assert call("GET", "/olivia/songs/refs", key=owner).json()["branch_heads"] == {
        "main": setting.history.head
    }


def test_a_private_repository_looks_like_no_repository(stack: Provisioned) -> None:
    setting = _setting(stack, "private")
    stranger = setting.keys["stranger"]
    for who in (None, stranger):
        hidden = expect_error(call("GET", "/olivia/songs/refs", key=who), 404, "not_found")
        missing = expect_error(call("GET", "/olivia/nothing/refs", key=who), 404, "not_found")
        assert hidden["message"] == missing["message"]
        hidden_push = call(
            "POST",
            "/olivia/songs/push/mpack-presign",
            {"mpack_key": "sha256:" + "1" * 64, "size_bytes": 10},
            who,
        )
        missing_push = call(
            "POST",
            "/olivia/nothing/push/mpack-presign",
            {"mpack_key": "sha256:" + "1" * 64, "size_bytes": 10},
            who,
        )
        assert hidden_push.status == missing_push.status == 404
        assert hidden_push.json()["message"] == missing_push.json()["message"]


def test_create_repo_needs_the_owners_handle_or_an_admin(stack: Provisioned) -> None:
    setting = _setting(stack, "public")
    expected = {
        "anonymous": (401, "auth_required"),
        "owner": (201, None),
        "reader": (403, "forbidden"),
        "writer": (403, "forbidden"),
        "admin_collaborator": (403, "forbidden"),
        "global_admin": (201, None),
        "stranger": (403, "forbidden"),
        "agent": (403, "forbidden"),
    }
    for who, (status, code) in expected.items():
        key = setting.keys[who]
        answer = call("POST", "/api/repos", {"owner": "olivia", "name": f"new-{who}"}, key)
        if code is None:
            assert answer.status == status, (who, answer.body)
            assert answer.json()["owner"] == "olivia"
        else:
            expect_error(answer, status, code)
        if key is not None:
            own = call("POST", "/api/repos", {"owner": key.handle, "name": "mine"}, key)
            assert own.status == 201, (who, own.body)


def test_a_pack_cannot_borrow_another_repositorys_objects(stack: Provisioned) -> None:
    olivia, sam = identity("olivia"), identity("sam")
    repo_a = create_repo(olivia, "a", "private")
    history_a = linear_history(2, tag="secret")
    assert push(stack, olivia, repo_a, encode_mpack(history_a.pack())).status == 200
    stolen = history_a.snapshots[history_a.records[history_a.head].snapshot_id]

    repo_b = create_repo(sam, "b")
    borrower = History("borrower")
    borrower.blobs.update(history_a.blobs)
    borrower.add({path: history_a.blobs[oid] for path, oid in stolen.items()})
    pack = borrower.pack()
    pack["objects"] = [o for o in pack["objects"] if o["object_id"] not in history_a.blobs]
    assert pack["objects"] == []

    answer = push(stack, sam, repo_b, encode_mpack(pack))

    refusal = expect_error(answer, 422, "dangling_object")
    assert refusal["item"] in stolen.values()
    assert call("GET", "/sam/b/refs").json()["branch_heads"] == {}
    for oid in stolen.values():
        expect_error(call("GET", f"/sam/b/objects/{oid}", key=sam), 404, "not_found")

    # Carrying the bytes itself is fine: then repository B holds its own copy.
    honest = encode_mpack(borrower.pack())
    assert push(stack, sam, repo_b, honest).status == 200
    for oid in stolen.values():
        assert call("GET", f"/sam/b/objects/{oid}").body == history_a.blobs[oid]


def test_repository_b_never_serves_repository_a(stack: Provisioned) -> None:
    olivia, sam = identity("olivia"), identity("sam")
    repo_a = create_repo(olivia, "a")
    history_a = linear_history(3, tag="a")
    assert push(stack, olivia, repo_a, encode_mpack(history_a.pack())).status == 200
    repo_b = create_repo(sam, "b")
    history_b = linear_history(2, tag="b")
    assert push(stack, sam, repo_b, encode_mpack(history_b.pack())).status == 200

    for who in (None, sam, olivia):
        for oid in history_a.blobs:
            expect_error(call("GET", f"/sam/b/objects/{oid}", key=who), 404, "not_found")
        for cid, commit in history_a.records.items():
            expect_error(call("GET", f"/sam/b/commits/{cid}", key=who), 404, "not_found")
            path = f"/sam/b/snapshots/{commit.snapshot_id}"
            expect_error(call("GET", path, key=who), 404, "not_found")
        want = {"want": [history_a.head], "have": []}
        expect_error(call("POST", "/sam/b/fetch/mpack", want, who), 404, "not_found")
        mixed = {"want": [history_b.head], "have": [history_a.head]}
        grant = call("POST", "/sam/b/fetch/mpack", mixed, who)
        assert grant.status == 200, grant.body
        data = fetched_pack(stack, repo_b["repoId"], grant.json())
        pack = decode_mpack(data)
        assert {o["object_id"] for o in pack["objects"]} == set(history_b.blobs)
        assert not any(blob in data for blob in history_a.blobs.values())
        assert [c["commit_id"] for c in pack["commits"]] == history_b.order
