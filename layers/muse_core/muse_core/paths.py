"""Where things live under ``<root>/.muse`` and which names and paths are legal."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from muse_core.errors import MuseError, describe

# Where a repository keeps its history, beside its working files.
MUSE_DIR = ".muse"
MAX_BRANCH_LENGTH = 255
MAX_PATH_LENGTH = 4096
# ext4, XFS, btrfs and ZFS hold 255 bytes a name; APFS, HFS+ and NTFS 255 UTF-16 units, which
# 255 UTF-8 bytes never exceed.
MAX_SEGMENT_BYTES = 255
_BRANCH_FORBIDDEN = ("\x00", "\r", "\n", "\t", "\\")

# Characters NTFS and the Win32 API refuse in a name.
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*\x00-\x1f]')
# Win32 opens these devices for any name whose stem (before the first '.') they are.
_WINDOWS_DEVICES = frozenset(
    ["con", "prn", "aux", "nul", "conin$", "conout$"]
    + [f"{port}{n}" for port in ("com", "lpt") for n in "0123456789\u00b9\u00b2\u00b3"]
)
_DEVICE_STARTS = ("/con", "/prn", "/aux", "/nul", "/com", "/lpt")
# Code points HFS+ leaves out when it compares names (the set git's is_hfs_dotgit skips).
_HFS_IGNORED = dict.fromkeys(
    [0x200C, 0x200D, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)
# NTFS gives the first entry of a fresh directory, ``.muse`` in a clone, the 8.3 name MUSE~1.
_MUSE_SHORT_NAME = re.compile(r"muse~[0-9]+")


def muse_dir(root: Path | str) -> Path:
    return Path(root) / MUSE_DIR


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
    _refuse_unwritable_segments(name, "invalid_branch_name", "branch name")
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
    if _aliases_muse_dir(path.partition("/")[0]):
        raise MuseError("invalid_path", "manifest path lies in the repository's .muse", path)
    _refuse_unwritable_segments(path, "invalid_path", "manifest path")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise MuseError("invalid_path", "manifest path is not valid UTF-8", repr(path)) from None
    return path


def _refuse_unwritable_segments(name: str, code: str, what: str) -> None:
    """Every segment must be a name Linux, macOS and Windows checkouts can all write."""
    long = len(name.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES
    forbidden = _WINDOWS_FORBIDDEN.search(name)
    # Win32 drops a trailing dot or space, so the name would become another one.
    trailing = name.endswith((".", " ")) or "./" in name or " /" in name
    rooted = "/" + name.casefold()
    # Most paths have none of these: only then is each segment looked at.
    if not (long or forbidden or trailing or any(d in rooted for d in _DEVICE_STARTS)):
        return
    for segment in name.split("/"):
        stem = segment.partition(".")[0].rstrip(" ")
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            problem = f"is longer than {MAX_SEGMENT_BYTES} bytes"
        elif forbidden and forbidden[0] in segment:
            problem = f"contains {forbidden[0]!r}, which Windows refuses in a name"
        elif segment.endswith((".", " ")):
            problem = f"ends with {segment[-1]!r}, which Windows drops"
        elif stem.casefold() in _WINDOWS_DEVICES:
            problem = f"is the Windows device name {stem!r}"
        else:
            continue
        raise MuseError(code, f"{what} segment {segment!r} {problem}", name)


def _aliases_muse_dir(segment: str) -> bool:
    """Whether some file system opens this top-level name as ``.muse``: HFS+ skips ignorable
    code points, NTFS reads ``name:stream`` as a stream of ``name`` and answers to 8.3 names,
    Windows drops trailing dots and spaces, and case-insensitive file systems fold case."""
    if not segment.isascii():
        segment = unicodedata.normalize("NFD", segment.translate(_HFS_IGNORED))
    folded = segment.partition(":")[0].rstrip(". ").casefold()
    return folded == MUSE_DIR or _MUSE_SHORT_NAME.fullmatch(folded) is not None
