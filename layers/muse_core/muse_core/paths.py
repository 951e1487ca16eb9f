"""Where things live under ``<root>/.muse`` and which names and paths are legal."""

from __future__ import annotations

from pathlib import Path

from muse_core.errors import MuseError, describe

MAX_BRANCH_LENGTH = 255
MAX_PATH_LENGTH = 4096
_BRANCH_FORBIDDEN = ("\x00", "\r", "\n", "\t", "\\")


def muse_dir(root: Path | str) -> Path:
    return Path(root) / ".muse"


def validate_branch_name(name: object) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_BRANCH_LENGTH:
        raise MuseError(
            "invalid_branch_name", "branch name must be 1 to 255 characters", describe(name)
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise MuseError(
            "invalid_branch_name", "branch name is not valid UTF-8", describe(name)
        ) from None
    if any(ch in name for ch in _BRANCH_FORBIDDEN):
        raise MuseError(
            "invalid_branch_name", "branch name contains NUL, CR, LF, TAB or backslash", name
        )
    if name[0] in "./" or name[-1] in "./":
        raise MuseError("invalid_branch_name", "branch name starts or ends with '.' or '/'", name)
    if ".." in name or "//" in name:
        raise MuseError("invalid_branch_name", "branch name contains '..' or '//'", name)
    if "." in name.split("/"):
        raise MuseError("invalid_branch_name", "branch name has a '.' segment", name)
    return name


def validate_manifest_path(path: object) -> str:
    if not isinstance(path, str) or not path:
        raise MuseError("invalid_path", "manifest path must be a non-empty string", repr(path))
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_LENGTH:
        raise MuseError(
            "limit_exceeded", f"manifest path longer than {MAX_PATH_LENGTH} bytes", path
        )
    if "\x00" in path or "\\" in path:
        raise MuseError("invalid_path", "manifest path contains NUL or backslash", path)
    if any(seg in ("", ".", "..") for seg in path.split("/")):
        raise MuseError(
            "invalid_path", "manifest path has an empty, '.' or '..' segment or a leading '/'", path
        )
    if path[0] == "." and _is_muse_dir(path.partition("/")[0]):
        raise MuseError("invalid_path", "manifest path lies in the repository's .muse", path)
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise MuseError("invalid_path", "manifest path is not valid UTF-8", repr(path)) from None
    return path


def _is_muse_dir(segment: str) -> bool:
    """Whether a checkout could write this top-level name into ``.muse``: case-insensitive
    filesystems fold case, and Windows drops trailing dots and spaces."""
    return segment.rstrip(". ").casefold() == ".muse"
