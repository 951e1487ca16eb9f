"""Branch refs (``.muse/refs/heads/<branch>``) and ``HEAD``."""

from __future__ import annotations

from pathlib import Path

from muse_core.ids import require_id
from muse_core.paths import muse_dir, validate_branch_name

DEFAULT_BRANCH = "main"


def heads_dir(root: Path | str) -> Path:
    return muse_dir(root) / "refs" / "heads"


def write_branch_ref(root: Path | str, branch: str, commit_id: str) -> Path:
    validate_branch_name(branch)
    if commit_id:
        require_id(commit_id, "branch head")
    path = heads_dir(root) / branch
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(commit_id, encoding="utf-8")
    return path


def read_branch_ref(root: Path | str, branch: str) -> str | None:
    """The head commit of ``branch``; None when the branch is missing or has no commits yet."""
    validate_branch_name(branch)
    path = heads_dir(root) / branch
    if not path.is_file():
        return None
    return path.read_text(encoding="utf-8").strip() or None


def list_branches(root: Path | str) -> dict[str, str]:
    """Every branch with a commit, nested names (``feature/x``) included, sorted by name."""
    return heads_under(heads_dir(root))


def heads_under(base: Path) -> dict[str, str]:
    """The non-empty ref files below ``base`` (branch heads, or a remote's tracking heads)."""
    if not base.is_dir():
        return {}
    heads: dict[str, str] = {}
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        head = path.read_text(encoding="utf-8").strip()
        if head:
            heads[path.relative_to(base).as_posix()] = head
    return heads


def write_head(root: Path | str, branch: str) -> None:
    validate_branch_name(branch)
    (muse_dir(root) / "HEAD").write_text(f"ref: refs/heads/{branch}\n", encoding="utf-8")


def read_head(root: Path | str) -> tuple[str, str]:
    """``("ref", branch)`` or ``("commit", id)``; a missing HEAD means the default branch."""
    path = muse_dir(root) / "HEAD"
    if not path.is_file():
        return ("ref", DEFAULT_BRANCH)
    text = path.read_text(encoding="utf-8").strip()
    if text.startswith("ref: refs/heads/"):
        return ("ref", text.removeprefix("ref: refs/heads/"))
    return ("commit", text.removeprefix("commit: ").strip())
