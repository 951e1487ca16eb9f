"""Reading a repository: refs, commits, the log, rebuilt snapshots and objects."""

from __future__ import annotations

import heapq
import json
import re
from dataclasses import dataclass
from typing import Any

import msgpack

from muse_cloud.domain.errors import ServiceError, not_found
from muse_cloud.domain.identities import Caller
from muse_cloud.domain.repos import Repo
from muse_cloud.services.access import RepoAccessService
from muse_cloud.services.ids import checked_id
from muse_cloud.storage.commits import StoredCommit
from muse_cloud.storage.stores import Stores
from muse_core.errors import MuseError
from muse_core.paths import validate_branch_name

MAX_LOG_LIMIT = 500
# Lambda returns at most 6 MB (6,291,456 bytes) from a synchronous call, headers and envelope
# included: an answer measured by ``wire_bytes`` above this goes by URL instead.
RESPONSE_BUDGET_BYTES = 4_000_000
# The page's own keys and cursor, beside the commits it lists.
_LOG_PAGE_OVERHEAD = 1024
_TOKEN = re.compile(r"[0-9a-f]{32}")


def wire_bytes(document: Any) -> int:
    """What a JSON answer costs in the Lambda response: its text escaped once more as the body
    string of the response, or its msgpack form in base64 when the client asks for msgpack,
    whichever is larger. (One MiB of '"' in a message is 4 MiB of response.)"""
    text = json.dumps(document)
    as_json = len(text) + text.count('"') + text.count("\\")
    as_msgpack = 4 * -(-len(msgpack.packb(document, use_bin_type=True)) // 3)
    return max(as_json, as_msgpack)


@dataclass(frozen=True)
class DocumentAnswer:
    """A JSON answer; ``url`` is set when it is too large to go inline and must be fetched
    from there (the same document)."""

    body: dict[str, Any]
    url: str | None = None


@dataclass(frozen=True)
class ObjectAnswer:
    """Small objects come back inline; large ones as a short-lived URL."""

    data: bytes | None = None
    url: str | None = None


@dataclass(frozen=True)
class BranchHeads:
    repo: Repo
    heads: dict[str, str]
    # Told to signed callers only, so a client refuses a push it may not make before building
    # and uploading a pack.
    may_push: bool | None = None


@dataclass
class HistoryService:
    stores: Stores
    access: RepoAccessService
    inline_object_bytes: int

    def branch_heads(self, caller: Caller, owner: str, name: str) -> BranchHeads:
        repo = self.access.by_slug(caller, owner, name, "read")
        heads = self.stores.refs.heads(repo.repo_id)
        may_push = None if caller.is_anonymous else self.access.may_push(caller, repo)
        return BranchHeads(repo, heads, may_push)

    def commit(self, caller: Caller, owner: str, name: str, commit_id: str) -> DocumentAnswer:
        repo = self.access.by_slug(caller, owner, name, "read")
        stored = self.stores.commits.get(repo.repo_id, checked_id(commit_id, "commit id"))
        if stored is None:
            raise not_found("commit", commit_id)
        return self._deliver(repo.repo_id, stored.record.to_dict())

    def log(
        self,
        caller: Caller,
        owner: str,
        name: str,
        branch: str | None,
        limit: int,
        cursor: str | None,
    ) -> DocumentAnswer:
        """Commits reachable from the branch head, newest first (by generation, then time).

        A commit's parents always have lower generations than it, so the walk never meets a
        commit again after emitting it, and the frontier alone is a complete cursor. A page
        ends early rather than outgrow the response budget; one commit over it on its own goes
        by URL.
        """
        repo = self.access.by_slug(caller, owner, name, "read")
        if not 1 <= limit <= MAX_LOG_LIMIT:
            raise ServiceError("invalid_limit", f"limit must be 1 to {MAX_LOG_LIMIT}", str(limit))
        if cursor:
            frontier = self._load_cursor(repo.repo_id, cursor)
        else:
            asked = branch
            branch = branch or repo.default_branch
            try:
                validate_branch_name(branch)
            except MuseError as error:
                raise ServiceError.from_core(error) from None
            head = self.stores.refs.get(repo.repo_id, branch)
            if head is None and asked:
                raise not_found("branch", branch)
            # The default branch of a repository nobody has pushed to yet has no commits.
            frontier = [head] if head else []
        heap: list[tuple[int, str, str, StoredCommit]] = []
        self._push(repo.repo_id, heap, frontier)
        commits: list[dict[str, Any]] = []
        spent = _LOG_PAGE_OVERHEAD
        while heap and len(commits) < limit:
            record = heap[0][3].record
            as_dict = record.to_dict()
            cost = wire_bytes(as_dict) + 2  # and the separator
            if commits and spent + cost > RESPONSE_BUDGET_BYTES:
                break
            heapq.heappop(heap)
            commits.append(as_dict)
            spent += cost
            self._push(repo.repo_id, heap, record.parent_ids)
        remaining = sorted(entry[2] for entry in heap)
        next_cursor = self.stores.cursors.save(repo.repo_id, remaining) if remaining else None
        return self._deliver(repo.repo_id, {"commits": commits, "next_cursor": next_cursor})

    def _load_cursor(self, repo_id: str, cursor: str) -> list[str]:
        frontier = self.stores.cursors.load(repo_id, cursor) if _TOKEN.fullmatch(cursor) else None
        if frontier is None:
            raise ServiceError(
                "invalid_cursor", "the cursor is not one this server issued", cursor[:100]
            )
        return frontier

    def _push(self, repo_id: str, heap: list[tuple[int, str, str, StoredCommit]], ids: Any) -> None:
        queued = {entry[2] for entry in heap}
        wanted = [i for i in ids if i not in queued]
        for cid, stored in self.stores.commits.get_many(repo_id, wanted).items():
            # Negated keys: heapq pops the smallest, the log wants the newest first.
            key = (-stored.generation, _negate(stored.record.committed_at), cid, stored)
            heapq.heappush(heap, key)

    def snapshot(self, caller: Caller, owner: str, name: str, snapshot_id: str) -> DocumentAnswer:
        repo = self.access.by_slug(caller, owner, name, "read")
        manifest = self.stores.snapshots.manifest(
            repo.repo_id, checked_id(snapshot_id, "snapshot id")
        )
        if manifest is None:
            raise not_found("snapshot", snapshot_id)
        return self._deliver(repo.repo_id, {"snapshot_id": snapshot_id, "manifest": manifest})

    def _deliver(self, repo_id: str, body: dict[str, Any]) -> DocumentAnswer:
        if wire_bytes(body) <= RESPONSE_BUDGET_BYTES:
            return DocumentAnswer(body)
        return DocumentAnswer(body, self.stores.answers.url(repo_id, json.dumps(body).encode()))

    def object(self, caller: Caller, owner: str, name: str, object_id: str) -> ObjectAnswer:
        repo = self.access.by_slug(caller, owner, name, "read")
        location = self.stores.pack_index.locate(repo.repo_id, checked_id(object_id, "object id"))
        if location is None:
            raise not_found("object", object_id)
        if location.length > self.inline_object_bytes:
            return ObjectAnswer(url=self.stores.packs.presign_object(repo.repo_id, location))
        packs = self.stores.packs
        return ObjectAnswer(
            data=packs.read_range(location.s3_key, location.offset, location.length)
        )


def _negate(text: str) -> str:
    return "".join(chr(0x10FFFF - ord(ch)) for ch in text)
