"""``repo.json``: repository identity, tolerant of the minimal files older clients wrote."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from muse_core.paths import muse_dir
from muse_core.refs import DEFAULT_BRANCH, write_head

SCHEMA_VERSION = "0.1.5"


def init_repo(
    root: Path | str, *, repo_id: str | None = None, domain: str = "code"
) -> dict[str, Any]:
    """Create ``.muse`` with repo.json, HEAD on main and an empty main ref, as the client does."""
    base = muse_dir(root)
    for sub in ("objects", "commits", "snapshots", "refs/heads"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {
        "repo_id": repo_id or str(uuid.uuid4()),
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(UTC).isoformat(),
        "domain": domain,
    }
    write_repo_info(root, info)
    write_head(root, DEFAULT_BRANCH)
    main_ref = base / "refs" / "heads" / DEFAULT_BRANCH
    if not main_ref.exists():
        main_ref.write_text("", encoding="utf-8")
    return info


def write_repo_info(root: Path | str, info: dict[str, Any]) -> None:
    path = muse_dir(root) / "repo.json"
    path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def read_repo_info(root: Path | str) -> dict[str, Any]:
    data = json.loads((muse_dir(root) / "repo.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("repo.json is not a JSON object")
    return data
