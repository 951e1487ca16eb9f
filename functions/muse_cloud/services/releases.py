"""Tags and releases (wire v0): records the client sends, checked and kept as sent."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from muse_cloud.domain.errors import ServiceError, not_found
from muse_cloud.domain.identities import Caller
from muse_cloud.services.access import RepoAccessService
from muse_cloud.services.ids import checked_id
from muse_cloud.storage.stores import Stores

CHANNELS = ("stable", "beta", "alpha", "nightly")
MAX_TAGS_PER_CALL = 1_000
# A DynamoDB item holds 400 KB; a release is one item.
MAX_RELEASE_BYTES = 300_000
_TAG_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 255 or _CONTROL.search(value):
        raise ServiceError(
            "invalid_tag", f"{where} must be 1-255 characters, no control characters", where
        )
    return value


def _without_id(release: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in release.items() if k != "release_id"}


@dataclass
class ReleaseService:
    stores: Stores
    access: RepoAccessService

    def _require_commits(self, repo_id: str, commit_ids: list[str]) -> None:
        missing = set(commit_ids) - self.stores.commits.known(repo_id, commit_ids)
        if missing:
            raise ServiceError("missing_commit", "no such commit in this repository", min(missing))

    def add_tags(self, caller: Caller, owner: str, name: str, tags: Any) -> dict[str, Any]:
        repo = self.access.by_slug(caller, owner, name, "write")
        if not isinstance(tags, list) or len(tags) > MAX_TAGS_PER_CALL:
            raise ServiceError(
                "invalid_body", f"tags must be a list of at most {MAX_TAGS_PER_CALL}", "tags"
            )
        records = []
        for index, tag in enumerate(tags):
            where = f"tags[{index}]"
            if not isinstance(tag, dict):
                raise ServiceError("invalid_body", f"{where} must be a map", where)
            if not isinstance(tag.get("tag_id"), str) or not _TAG_ID.fullmatch(tag["tag_id"]):
                raise ServiceError(
                    "invalid_tag", f"{where}.tag_id: 1-128 of A-Z a-z 0-9 . _ : -", where
                )
            _name(tag.get("tag"), f"{where}.tag")
            checked_id(tag.get("commit_id"), f"{where}.commit_id")
            records.append(tag)
        self._require_commits(repo.repo_id, [t["commit_id"] for t in records])
        stored: list[str] = []
        for record in records:
            held = self.stores.releases.add_tag(repo.repo_id, record)
            if held is None:
                stored.append(record["tag_id"])
            elif (held.get("commit_id"), held.get("tag")) != (record["commit_id"], record["tag"]):
                raise ServiceError("tag_exists", "this tag id names another tag", record["tag_id"])
        self._unless_collecting(
            repo.repo_id, lambda: self.stores.releases.remove_tags(repo.repo_id, stored)
        )
        return {"stored": len(stored)}

    def _unless_collecting(self, repo_id: str, undo: Callable[[], object]) -> None:
        """A tag or release names a commit the repository holds, which a garbage collection
        may be about to delete (one no ref reaches). Written before the hold is read, as a push
        claims before it reads it (``storage.gc_hold``): the collection sees the new name and
        leaves the repository alone, or the name is taken back here."""
        until = self.stores.gc_holds.held_until(repo_id)
        if until is not None:
            undo()
            raise ServiceError(
                "repository_busy",
                f"garbage collection holds the repository for {max(1, int(until - time.time()))}"
                " s more; send this again then",
                repo_id,
            )

    def tags(self, caller: Caller, owner: str, name: str) -> dict[str, Any]:
        repo = self.access.by_slug(caller, owner, name, "read")
        return {"tags": self.stores.releases.tags(repo.repo_id)}

    def create(self, caller: Caller, owner: str, name: str, release: Any) -> dict[str, Any]:
        repo = self.access.by_slug(caller, owner, name, "write")
        if not isinstance(release, dict):
            raise ServiceError("invalid_body", "a release is a map", None)
        tag = _name(release.get("tag"), "tag")
        commit_id = checked_id(release.get("commit_id"), "commit_id")
        if release.get("snapshot_id") not in (None, ""):
            checked_id(release["snapshot_id"], "snapshot_id")
        channel = release.get("channel", "stable")
        if channel not in CHANNELS:
            raise ServiceError(
                "invalid_channel", f"channel must be one of {CHANNELS}", str(channel)
            )
        semver = release.get("semver", {})
        if not isinstance(semver, dict) or any(
            not isinstance(semver.get(k, 0), int) for k in ("major", "minor", "patch")
        ):
            raise ServiceError("invalid_semver", "semver major, minor and patch are integers", tag)
        if not isinstance(release.get("is_draft", False), bool):
            raise ServiceError("invalid_type", "is_draft must be a boolean", tag)
        self._require_commits(repo.repo_id, [commit_id])
        record = {**release, "release_id": str(release.get("release_id") or uuid.uuid4())}
        try:
            size = len(json.dumps(record))
        except (TypeError, ValueError):
            raise ServiceError("invalid_type", "a release holds JSON values only", tag) from None
        if size > MAX_RELEASE_BYTES:
            raise ServiceError(
                "limit_exceeded", f"a release is at most {MAX_RELEASE_BYTES} bytes", tag
            )
        held = self.stores.releases.add_release(repo.repo_id, record)
        if held is None:
            self._unless_collecting(
                repo.repo_id, lambda: self.stores.releases.retract(repo.repo_id, tag)
            )
            return {"release_id": record["release_id"]}
        same = _without_id(held) == _without_id(record)
        if same and release.get("release_id") in (None, "", held["release_id"]):
            # The same release sent again: the one held answers.
            return {"release_id": held["release_id"]}
        raise ServiceError("release_exists", "this tag has another release already", tag)

    def list(
        self, caller: Caller, owner: str, name: str, channel: str | None, include_drafts: bool
    ) -> dict[str, Any]:
        repo = self.access.by_slug(caller, owner, name, "read")
        if channel is not None and channel not in CHANNELS:
            raise ServiceError("invalid_channel", f"channel must be one of {CHANNELS}", channel)
        found = [
            r
            for r in self.stores.releases.releases(repo.repo_id)
            if (channel is None or r.get("channel", "stable") == channel)
            and (include_drafts or not r.get("is_draft", False))
        ]
        found.sort(key=lambda r: (str(r.get("created_at", "")), r["tag"]), reverse=True)
        return {"releases": found}

    def retract(self, caller: Caller, owner: str, name: str, tag: str) -> dict[str, Any]:
        repo = self.access.by_slug(caller, owner, name, "write")
        _name(tag, "tag")
        if not self.stores.releases.retract(repo.repo_id, tag):
            raise not_found("release", tag)
        return {"retracted": tag}
