"""Reading a repository: refs, commits, the log, rebuilt snapshots and objects."""

from __future__ import annotations

import base64
import heapq
import json
from dataclasses import dataclass, field
from typing import Any

from muse_cloud.auth.identities import Caller
from muse_cloud.config import settings
from muse_cloud.errors import ServiceError, not_found
from muse_cloud.services.access import RepoAccessService
from muse_cloud.storage.commits import StoredCommit
from muse_cloud.storage.packs import PackStore
from muse_cloud.storage.receiver import RepoStores
from muse_cloud.storage.refs import RefStore
from muse_core.errors import MuseError
from muse_core.paths import validate_branch_name
from muse_core.types import require_id

MAX_LOG_LIMIT = 500
MAX_CURSOR_CHARS = 8 * 1024


def checked_id(value: str, what: str) -> str:
    try:
        return require_id(value, what)
    except MuseError as error:
        raise ServiceError(400, error.code, error.message, error.item) from None


@dataclass(frozen=True)
class ObjectAnswer:
    """Small objects come back inline; large ones as a short-lived URL."""

    data: bytes | None = None
    url: str | None = None


@dataclass
class HistoryService:
    access: RepoAccessService = field(default_factory=RepoAccessService)
    refs: RefStore = field(default_factory=RefStore)
    stores: RepoStores = field(default_factory=RepoStores)
    packs: PackStore = field(default_factory=PackStore)

    def branch_heads(self, caller: Caller, owner: str, name: str) -> dict[str, Any]:
        repo = self.access.by_slug(caller, owner, name, "read")
        return {
            "repo_id": repo.repo_id,
            "domain": repo.domain,
            "default_branch": repo.default_branch,
            "branch_heads": self.refs.heads(repo.repo_id),
        }

    def commit(self, caller: Caller, owner: str, name: str, commit_id: str) -> dict[str, Any]:
        repo = self.access.by_slug(caller, owner, name, "read")
        stored = self.stores.commits.get(repo.repo_id, checked_id(commit_id, "commit id"))
        if stored is None:
            raise not_found("commit", commit_id)
        return stored.record.to_dict()

    def log(
        self,
        caller: Caller,
        owner: str,
        name: str,
        branch: str | None,
        limit: int,
        cursor: str | None,
    ) -> dict[str, Any]:
        """Commits reachable from the branch head, newest first (by generation, then time).

        A commit's parents always have lower generations than it, so the walk never meets a
        commit again after emitting it, and the frontier alone is a complete cursor.
        """
        repo = self.access.by_slug(caller, owner, name, "read")
        if not 1 <= limit <= MAX_LOG_LIMIT:
            raise ServiceError(
                422, "invalid_limit", f"limit must be 1 to {MAX_LOG_LIMIT}", str(limit)
            )
        if cursor:
            frontier = _decode_cursor(cursor)
        else:
            asked = branch
            branch = branch or repo.default_branch
            try:
                validate_branch_name(branch)
            except MuseError as error:
                raise ServiceError(422, error.code, error.message, error.item) from None
            head = self.refs.get(repo.repo_id, branch)
            if head is None and asked:
                raise not_found("branch", branch)
            # The default branch of a repository nobody has pushed to yet has no commits.
            frontier = [head] if head else []
        heap: list[tuple[int, str, str, StoredCommit]] = []
        self._push(repo.repo_id, heap, frontier)
        commits: list[dict[str, Any]] = []
        while heap and len(commits) < limit:
            _, _, cid, stored = heapq.heappop(heap)
            if heap and heap[0][2] == cid:
                continue
            commits.append(stored.record.to_dict())
            self._push(repo.repo_id, heap, stored.record.parent_ids)
        remaining = sorted({entry[2] for entry in heap})
        return {"commits": commits, "next_cursor": _encode_cursor(remaining) if remaining else None}

    def _push(self, repo_id: str, heap: list[tuple[int, str, str, StoredCommit]], ids: Any) -> None:
        queued = {entry[2] for entry in heap}
        wanted = [i for i in ids if i not in queued]
        for cid, stored in self.stores.commits.get_many(repo_id, wanted).items():
            # Negated keys: heapq pops the smallest, the log wants the newest first.
            key = (-stored.generation, _negate(stored.record.committed_at), cid, stored)
            heapq.heappush(heap, key)

    def snapshot(self, caller: Caller, owner: str, name: str, snapshot_id: str) -> dict[str, Any]:
        repo = self.access.by_slug(caller, owner, name, "read")
        manifest = self.stores.snapshots.manifest(
            repo.repo_id, checked_id(snapshot_id, "snapshot id")
        )
        if manifest is None:
            raise not_found("snapshot", snapshot_id)
        return {"snapshot_id": snapshot_id, "manifest": manifest}

    def object(self, caller: Caller, owner: str, name: str, object_id: str) -> ObjectAnswer:
        repo = self.access.by_slug(caller, owner, name, "read")
        location = self.stores.objects.locate(repo.repo_id, checked_id(object_id, "object id"))
        if location is None:
            raise not_found("object", object_id)
        if location.length > settings().inline_object_bytes:
            return ObjectAnswer(url=self.packs.presign_range(location))
        return ObjectAnswer(
            data=self.packs.read_range(location.s3_key, location.offset, location.length)
        )


def _negate(text: str) -> str:
    return "".join(chr(0x10FFFF - ord(ch)) for ch in text)


def _encode_cursor(frontier: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(frontier).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list[str]:
    invalid = ServiceError(
        422, "invalid_cursor", "the cursor is not one this server issued", cursor[:100]
    )
    # API Gateway refuses request lines much longer than this anyway; and a bound keeps a
    # crafted cursor from costing more than a legitimate one to decode.
    if len(cursor) > MAX_CURSOR_CHARS:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        frontier = json.loads(raw)
    # Deeply nested JSON ("[[[[...") exhausts the decoder's recursion limit.
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise invalid from None
    if not isinstance(frontier, list) or not frontier:
        raise invalid
    return [checked_id(c, "cursor") for c in frontier]
