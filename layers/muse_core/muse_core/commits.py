"""Commit records: ``.muse/commits/<commit_id>.json``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from muse_core.ids import require_id
from muse_core.paths import muse_dir
from muse_core.snapshot import compute_commit_id

# The record's fields in the order the client writes a new record; unknown fields follow.
COMMIT_FIELDS: tuple[str, ...] = (
    "commit_id",
    "repo_id",
    "branch",
    "snapshot_id",
    "message",
    "committed_at",
    "parent_commit_id",
    "parent2_commit_id",
    "author",
    "metadata",
    "structured_delta",
    "sem_ver_bump",
    "breaking_changes",
    "agent_id",
    "model_id",
    "toolchain_id",
    "prompt_hash",
    "signature",
    "signer_key_id",
    "format_version",
    "reviewed_by",
    "test_runs",
)


def _client_defaults() -> dict[str, Any]:
    """The value the client writes for each field a new record does not set."""
    return {
        "repo_id": "",
        "branch": "main",
        "parent_commit_id": None,
        "parent2_commit_id": None,
        "author": "",
        "metadata": {},
        "structured_delta": None,
        "sem_ver_bump": "none",
        "breaking_changes": [],
        "agent_id": "",
        "model_id": "",
        "toolchain_id": "",
        "prompt_hash": "",
        "signature": "",
        "signer_key_id": "",
        "format_version": 5,
        "reviewed_by": [],
        "test_runs": 0,
    }


def _client_record(given: dict[str, Any]) -> dict[str, Any]:
    """Every known field, the client's default where not given, in the client's order; then
    the unknown ones."""
    values = {**_client_defaults(), **given}
    record = {k: values.pop(k) for k in COMMIT_FIELDS}
    record.update(values)
    return record


@dataclass(frozen=True, init=False)
class CommitRecord:
    """A commit as the client records it. ``fields`` holds every field sent, known or not."""

    commit_id: str
    snapshot_id: str
    message: str
    committed_at: str
    parent_commit_id: str | None = None
    parent2_commit_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __init__(
        self,
        commit_id: str,
        snapshot_id: str,
        message: str,
        committed_at: str | datetime,
        parent_commit_id: str | None = None,
        parent2_commit_id: str | None = None,
        fields: dict[str, Any] | None = None,
        **record_fields: Any,
    ) -> None:
        """Without ``fields``, the record is built as the client builds a new one: keyword
        arguments for any other field (``branch``, ``author``, ``metadata`` ...), the client's
        defaults for the rest. A datetime ``committed_at`` is kept as its ``isoformat()``, the
        string the client hashes. ``commit_id`` is taken as given, never recomputed."""
        at = committed_at.isoformat() if isinstance(committed_at, datetime) else committed_at
        if fields is None:
            fields = _client_record(
                {
                    "commit_id": commit_id,
                    "snapshot_id": snapshot_id,
                    "message": message,
                    "committed_at": at,
                    "parent_commit_id": parent_commit_id,
                    "parent2_commit_id": parent2_commit_id,
                    **record_fields,
                }
            )
        elif record_fields:
            raise TypeError(
                f"give fields either in `fields` or as keywords: {sorted(record_fields)}"
            )
        for name, value in (
            ("commit_id", commit_id),
            ("snapshot_id", snapshot_id),
            ("message", message),
            ("committed_at", at),
            ("parent_commit_id", parent_commit_id),
            ("parent2_commit_id", parent2_commit_id),
            ("fields", fields),
        ):
            object.__setattr__(self, name, value)

    @property
    def parent_ids(self) -> tuple[str, ...]:
        return tuple(p for p in (self.parent_commit_id, self.parent2_commit_id) if p)

    def expected_id(self) -> str:
        return compute_commit_id(self.parent_ids, self.snapshot_id, self.message, self.committed_at)

    @classmethod
    def create(
        cls,
        *,
        snapshot_id: str,
        message: str,
        committed_at: str,
        parent_ids: tuple[str, ...] = (),
        repo_id: str = "",
        branch: str = "main",
        **extra: Any,
    ) -> CommitRecord:
        """A new record with the id derived from its fields and the client's defaults, its
        fields in the client's order."""
        parents = (*parent_ids, None, None)[:2]
        record = _client_record(
            {
                "commit_id": compute_commit_id(parent_ids, snapshot_id, message, committed_at),
                "repo_id": repo_id,
                "branch": branch,
                "snapshot_id": snapshot_id,
                "message": message,
                "committed_at": committed_at,
                "parent_commit_id": parents[0],
                "parent2_commit_id": parents[1],
                **extra,
            }
        )
        return cls.from_dict(record)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CommitRecord:
        """Build from a decoded record; types are checked by the caller (verify or reader)."""
        return cls(
            commit_id=data["commit_id"],
            snapshot_id=data["snapshot_id"],
            message=data["message"],
            committed_at=data["committed_at"],
            parent_commit_id=data.get("parent_commit_id") or None,
            parent2_commit_id=data.get("parent2_commit_id") or None,
            fields=dict(data),
        )

    def to_dict(self) -> dict[str, Any]:
        """Every field in the order it came: a record is written back byte for byte."""
        return dict(self.fields)


def commit_path(root: Path | str, commit_id: str) -> Path:
    require_id(commit_id, "commit id")
    return muse_dir(root) / "commits" / f"{commit_id}.json"


def write_commit(root: Path | str, record: CommitRecord) -> Path:
    path = commit_path(root, record.commit_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def read_commit(root: Path | str, commit_id: str) -> CommitRecord:
    return CommitReader(root)(commit_id)


class CommitReader:
    """``read_commit`` for the many commits of one repository a walk of its history reads: the
    directory's path is made once (making a Path per commit was half the time of the walk)."""

    def __init__(self, root: Path | str) -> None:
        self._directory = os.path.join(muse_dir(root), "commits")

    def __call__(self, commit_id: str) -> CommitRecord:
        require_id(commit_id, "commit id")
        path = os.path.join(self._directory, f"{commit_id}.json")
        with open(path, encoding="utf-8") as source:
            return CommitRecord.from_dict(json.load(source))


def has_commit(root: Path | str, commit_id: str) -> bool:
    return commit_path(root, commit_id).is_file()
