"""The Muse client's side of wire v0, written from ``muse-wire-v0.md`` (never from the server
it tests): urllib, HTTP/1.1, ``Content-Length``, msgpack bodies, ``Authorization: Bearer``, no
redirects followed, and the push and clone sequences of its section 3 over a repository in the
client's format. The tests and ``benchmarks/bench_wire_v0.py`` drive the server with it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import msgpack

from muse_core.commits import CommitRecord, read_commit, write_commit
from muse_core.object_store import read_object, write_object
from muse_core.refs import read_branch_ref, write_branch_ref
from muse_core.snapshots import SnapshotRecord, read_snapshot, write_snapshot

PRESIGN_OVER_BYTES = 64 * 1024
OBJECTS_PER_CALL = 400
LOOPBACK = ("localhost", "127.0.0.1", "::1")


class WireError(Exception):
    """A non-2xx answer: the status and the body as text, as the client reports it."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:400].decode(errors='replace')}")
        self.status = status
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx then surfaces as an HTTPError: the client refuses redirects


_OPENER = urllib.request.build_opener(_NoRedirects)


def _send(
    method: str, url: str, data: bytes | None, headers: dict[str, str], timeout: float = 60
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            return int(answer.status), bytes(answer.read())
    except urllib.error.HTTPError as error:
        raise WireError(error.code, error.read()) from None


@dataclass
class WireClient:
    remote: str  # {base}/{owner}/{repo}
    token: str | None = None
    calls: list[tuple[str, str, int, int]] = field(default_factory=list)  # method, path, sent, got

    def _headers(self, content_type: str | None, with_token: bool) -> dict[str, str]:
        headers = {"Accept": "application/x-msgpack, application/json", "Connection": "close"}
        if content_type:
            headers["Content-Type"] = content_type
        if self.token and with_token:
            host = urlsplit(self.remote).hostname or ""
            if urlsplit(self.remote).scheme != "https" and host not in LOOPBACK:
                raise RuntimeError("a token over plain http is refused by the client")
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        as_json: bool = False,
        with_token: bool = True,
    ) -> dict[str, Any]:
        data = None
        content_type = None
        if body is not None:
            data = json.dumps(body).encode() if as_json else msgpack.packb(body, use_bin_type=True)
            content_type = "application/json" if as_json else "application/x-msgpack"
        url = f"{self.remote.rstrip('/')}/{path}"
        _, answer = _send(method, url, data, self._headers(content_type, with_token))
        self.calls.append((method, path, len(data or b""), len(answer)))
        if not answer:
            return {}
        decoded = msgpack.unpackb(answer, raw=False)  # JSON here is "invalid msgpack": raises
        return decoded if isinstance(decoded, dict) else {}

    def refs(self, with_token: bool = True) -> dict[str, Any]:
        return self.call("GET", "refs", with_token=with_token)

    def filter_objects(self, object_ids: list[str]) -> list[str]:
        return list(self.call("POST", "filter-objects", {"object_ids": object_ids})["missing"])

    def presign(self, object_ids: list[str]) -> dict[str, Any]:
        return self.call("POST", "presign", {"object_ids": object_ids, "direction": "put"})

    @staticmethod
    def put_presigned(url: str, data: bytes) -> int:
        """As the client sends it: no Authorization, no checksum header, and urllib's default
        Content-Type (form-urlencoded)."""
        status, _ = _send("PUT", url, data, {}, timeout=300)
        return status

    def push_objects(self, objects: dict[str, bytes]) -> dict[str, Any]:
        entries = [{"object_id": o, "content": b} for o, b in objects.items()]
        return self.call("POST", "push/objects", {"objects": entries})

    def push(self, bundle: dict[str, Any], branch: str, force: bool = False) -> dict[str, Any]:
        return self.call("POST", "push", {"bundle": bundle, "branch": branch, "force": force})

    def fetch(self, want: list[str], have: list[str], with_token: bool = True) -> dict[str, Any]:
        return self.call("POST", "fetch", {"want": want, "have": have}, with_token=with_token)

    def negotiate(self, want: list[str], have: list[str]) -> dict[str, Any]:
        return self.call("POST", "negotiate", {"want": want, "have": have})

    def add_tags(self, tags: list[dict[str, Any]]) -> dict[str, Any]:
        return self.call("POST", "tags", {"tags": tags})

    def create_release(self, release: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", "releases", release, as_json=True)

    def releases(self, query: str = "") -> list[dict[str, Any]]:
        return list(self.call("GET", f"releases{query}")["releases"])

    def retract_release(self, tag: str) -> dict[str, Any]:
        return self.call("DELETE", f"releases/{quote(tag, safe='')}")


def bundle_for(root: Path, head: str, have: set[str]) -> dict[str, Any]:
    """Breadth-first from the head, stopping only at exactly a ``have``: one snapshot (full
    manifest) per commit, no objects, no branch heads."""
    commits: list[dict[str, Any]] = []
    snapshots: list[dict[str, Any]] = []
    seen: set[str] = set()
    queue = deque([head])
    while queue:
        cid = queue.popleft()
        if cid in seen or cid in have:
            continue
        seen.add(cid)
        record = read_commit(root, cid)
        commits.append(record.to_dict())
        snap = read_snapshot(root, record.snapshot_id)
        snapshots.append(
            {"snapshot_id": snap.snapshot_id, "manifest": snap.manifest, "created_at": "t"}
        )
        queue.extend(record.parent_ids)
    return {"commits": commits, "snapshots": snapshots, "objects": []}


def push_branch(client: WireClient, root: Path, branch: str, force: bool = False) -> dict[str, Any]:
    """``muse push origin BRANCH``: refs, filter-objects, presign + PUTs for missing objects over
    64 KiB, push/objects in calls of 400, then push."""
    head = read_branch_ref(root, branch)
    assert head is not None
    remote_heads = client.refs().get("branch_heads", {})
    if remote_heads.get(branch) == head:
        return {"ok": True, "message": "up to date"}
    have = {h for h in remote_heads.values() if (root / ".muse/commits" / f"{h}.json").exists()}
    have.discard(head)
    bundle = bundle_for(root, head, have)
    object_ids = sorted({o for s in bundle["snapshots"] for o in s["manifest"].values()})
    missing = client.filter_objects(object_ids)
    contents = {o: read_object(root, o) for o in missing}
    large = [o for o in missing if len(contents[o]) > PRESIGN_OVER_BYTES]
    inline = [o for o in missing if o not in large]
    if large:
        answer = client.presign(large)
        for oid, url in answer.get("presigned", {}).items():
            assert client.put_presigned(url, contents[oid]) // 100 == 2
        inline += [o for o in large if o not in answer.get("presigned", {})]
    for start in range(0, len(inline), OBJECTS_PER_CALL):
        client.push_objects({o: contents[o] for o in inline[start : start + OBJECTS_PER_CALL]})
    return client.push(bundle, branch, force)


def clone_into(client: WireClient, dest: Path) -> dict[str, Any]:
    """``muse clone``: refs, then fetch every head with ``have=[]``, both without the token;
    writes what the fetch answered in the client's format and returns that answer."""
    refs = client.refs(with_token=False)
    heads = refs.get("branch_heads", {})
    answer = client.fetch(sorted(set(heads.values())), [], with_token=False)
    for obj in answer.get("objects", []):
        write_object(dest, obj["object_id"], obj["content"])
    for snap in answer.get("snapshots", []):
        write_snapshot(dest, SnapshotRecord(snap["snapshot_id"], dict(snap["manifest"])))
    for commit in answer.get("commits", []):
        write_commit(dest, CommitRecord.from_dict(commit))
    for branch, head in heads.items():
        write_branch_ref(dest, branch, head)
    return {"refs": refs, **answer}
