"""Remotes as the Muse client keeps them: ``[remotes.<name>]`` (``url``, ``branch``) in
``.muse/config.toml``, and the remote-tracking heads in ``.muse/remotes/<name>/<branch>``, each a
file holding the commit id with no newline, as ``refs/heads`` does."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from muse_cloud_cli.errors import CliError
from muse_core.paths import muse_dir, validate_branch_name
from muse_core.refs import heads_under

DEFAULT_REMOTE = "origin"
CONFIG_FILE = "config.toml"
# A bare TOML key that is also one safe path segment under .muse/remotes.
_REMOTE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")


def validate_remote_name(name: str) -> str:
    if not _REMOTE_NAME.fullmatch(name):
        raise CliError(
            "invalid_remote_name",
            f"{name!r} is not a remote name (letters, digits, '_' and '-', at most 64)",
        )
    return name


def config_path(root: Path) -> Path:
    return muse_dir(root) / CONFIG_FILE


def read_config(root: Path) -> dict[str, Any]:
    path = config_path(root)
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise CliError("invalid_config", f"{path} is not valid TOML: {error}") from None


def remote_entry(root: Path, name: str) -> dict[str, str]:
    """The ``[remotes.<name>]`` table's string fields; empty when the remote is not there."""
    remotes = read_config(root).get("remotes")
    entry = remotes.get(name) if isinstance(remotes, dict) else None
    if not isinstance(entry, dict):
        return {}
    return {k: v.strip() for k, v in entry.items() if isinstance(v, str) and v.strip()}


def set_remote(root: Path, name: str, url: str, branch: str | None = None) -> None:
    """Record ``url`` (and the upstream ``branch``) for ``name``, keeping every other setting."""
    validate_remote_name(name)
    config = read_config(root)
    remotes = config.get("remotes")
    if not isinstance(remotes, dict):
        remotes = config["remotes"] = {}
    entry = remotes.get(name)
    if not isinstance(entry, dict):
        entry = remotes[name] = {}
    entry["url"] = url
    if branch is not None:
        entry["branch"] = validate_branch_name(branch)
    path = config_path(root)
    temporary = path.with_name(f".{CONFIG_FILE}.tmp")
    temporary.write_text(tomli_w.dumps(config), encoding="utf-8")
    temporary.replace(path)


def tracking_dir(root: Path, remote: str) -> Path:
    return muse_dir(root) / "remotes" / validate_remote_name(remote)


def read_tracking(root: Path, remote: str) -> dict[str, str]:
    """Every remote-tracking head of ``remote``, nested branch names included."""
    return heads_under(tracking_dir(root, remote))


def write_tracking(root: Path, remote: str, heads: dict[str, str]) -> None:
    """Make the tracking heads of ``remote`` exactly ``heads``: branches gone remotely go here
    too, so that ``a`` and a later ``a/b`` never clash as file and directory."""
    base = tracking_dir(root, remote)
    for branch in read_tracking(root, remote):
        if branch not in heads:
            (base / branch).unlink()
    for directory in sorted((p for p in base.rglob("*") if p.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()
    for branch, head in sorted(heads.items()):
        path = base / validate_branch_name(branch)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(head, encoding="utf-8")


def update_tracking(root: Path, remote: str, branch: str, head: str) -> None:
    """Move one tracking head (after a push), leaving the others as the last fetch saw them."""
    write_tracking(root, remote, {**read_tracking(root, remote), branch: head})
