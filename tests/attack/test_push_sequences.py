"""Push sequences a client can send in the wrong order or twice, through the API handler: each
one ends where the client was told it ended."""

from __future__ import annotations

import requests
from api.client import call
from api.test_endpoints import identity
from histories import History

from muse_cloud_dev.provision import Provisioned
from muse_core.mpack import encode_mpack, mpack_key

from .outcomes import coded_4xx, fresh_repo, push_over_http


def one_commit(tag: str) -> tuple[str, bytes]:
    """The head and the pack of a one-commit history whose content is ``tag``."""
    history = History(tag)
    history.add({"a.mid": tag.encode()})
    return history.head, encode_mpack(history.pack())


def test_a_forced_rollback_to_an_earlier_identical_pack_moves_the_ref(stack: Provisioned) -> None:
    key = identity("rory")
    repo_id, slug = fresh_repo("rory", "rollback")
    rules = {"rules": [{"pattern": ":default", "force_push": True}]}
    assert call("PUT", f"/api/repos/{repo_id}/protection", rules, key).status == 200
    ours, theirs = one_commit("ours"), one_commit("theirs")

    for head, data in (ours, theirs, ours):
        done = push_over_http(key, slug, data, {"branch": "main", "head": head, "force": True})
        assert done.last.status == 200, done.last.body
        assert done.last.json()["head"] == head
        refs = call("GET", f"/{slug}/refs").json()["branch_heads"]
        assert refs == {"main": head}, "the answer says the ref moved; the ref says otherwise"


def test_unpack_calls_before_the_upload_do_not_spend_the_push(stack: Provisioned) -> None:
    key = identity("una")
    _, slug = fresh_repo("una", "early")
    head, data = one_commit("early")
    body = {"mpack_key": mpack_key(data), "branch": "main", "head": head}
    presign = call("POST", f"/{slug}/push/mpack-presign", {**body, "size_bytes": len(data)}, key)
    assert presign.status == 200, presign.body
    early = [call("POST", f"/{slug}/push/unpack-mpack", body, key) for _ in range(11)]
    assert all(a.status == 404 and coded_4xx(a) == "pack_not_found" for a in early), [
        (a.status, a.body[:80]) for a in early
    ]

    # The upload the client was granted, then the unpack call it retries: no second presign.
    grant = presign.json()
    put = requests.put(grant["upload_url"], data=data, headers=grant["headers"], timeout=30)
    assert put.status_code == 200
    unpacked = call("POST", f"/{slug}/push/unpack-mpack", body, key)
    assert unpacked.status == 200, unpacked.body
    assert call("GET", f"/{slug}/refs").json()["branch_heads"] == {"main": head}
