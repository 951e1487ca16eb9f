"""The mpack: one msgpack map carrying commits, delta-encoded snapshots and objects.

``build_pack`` works from any ``HistorySource`` (a local ``.muse`` directory or the server's
store); ``parse_mpack`` decodes a stream without holding every blob at once, recording where
each object's bytes sit in the pack so the pack itself can serve them later.
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import msgpack

from muse_core.commits import CommitRecord, has_commit, read_commit
from muse_core.delta import diff_manifests
from muse_core.errors import MuseError
from muse_core.limits import DEFAULT_LIMITS, Limits
from muse_core.object_store import read_object
from muse_core.refs import list_branches, read_branch_ref
from muse_core.repo import read_repo_info
from muse_core.snapshots import read_snapshot

MPACK_VERSION = 1


class HistorySource(Protocol):
    """Read access to a history, enough to build a pack from it."""

    def commits(self, commit_ids: Collection[str]) -> dict[str, CommitRecord]:
        """The records of the ids the source holds; unknown ids are left out."""
        ...

    def manifest(self, snapshot_id: str) -> dict[str, str]: ...

    def manifests(self, snapshot_ids: list[str]) -> Iterator[dict[str, str]]:
        """The manifests of ``snapshot_ids`` in that order (a store may read them in batches)."""
        ...

    def objects(self, object_ids: list[str]) -> dict[str, bytes]: ...


@dataclass(frozen=True)
class LocalHistory:
    """A ``HistorySource`` over a repository directory written in the client's format."""

    root: Path

    def commits(self, commit_ids: Collection[str]) -> dict[str, CommitRecord]:
        return {c: read_commit(self.root, c) for c in commit_ids if has_commit(self.root, c)}

    def manifest(self, snapshot_id: str) -> dict[str, str]:
        return read_snapshot(self.root, snapshot_id).manifest

    def manifests(self, snapshot_ids: list[str]) -> Iterator[dict[str, str]]:
        return (self.manifest(sid) for sid in snapshot_ids)

    def objects(self, object_ids: list[str]) -> dict[str, bytes]:
        return {oid: read_object(self.root, oid) for oid in object_ids}


def mpack_key(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def encode_mpack(pack: Mapping[str, Any]) -> bytes:
    return msgpack.packb(pack, use_bin_type=True)


def reachable_commits(source: HistorySource, starts: Iterable[str]) -> dict[str, CommitRecord]:
    """Every commit reachable from ``starts`` that the source holds (unknown ids are skipped)."""
    seen: dict[str, CommitRecord] = {}
    frontier = {c for c in starts if c}
    while frontier:
        found = source.commits(frontier)
        seen.update(found)
        frontier = {p for r in found.values() for p in r.parent_ids if p not in seen}
    return seen


def topological_order(commits: Mapping[str, CommitRecord]) -> list[CommitRecord]:
    """Parents before children; ties keep a stable, deterministic order."""
    order: list[CommitRecord] = []
    done: set[str] = set()
    for start in sorted(commits):
        stack: list[tuple[str, bool]] = [(start, False)]
        while stack:
            cid, expanded = stack.pop()
            if cid in done:
                continue
            if expanded:
                done.add(cid)
                order.append(commits[cid])
                continue
            stack.append((cid, True))
            stack.extend(
                (p, False)
                for p in reversed(commits[cid].parent_ids)
                if p in commits and p not in done
            )
    return order


def build_pack(
    source: HistorySource, branch_heads: Mapping[str, str], have: Iterable[str] = ()
) -> dict[str, Any]:
    """The mpack of what is reachable from ``branch_heads`` minus what ``have`` reaches."""
    held = reachable_commits(source, have)
    wanted = reachable_commits(source, (c for c in branch_heads.values() if c not in held))
    for cid in held:
        wanted.pop(cid, None)
    order = topological_order(wanted)

    plan: list[tuple[str, str | None]] = []
    planned = {c.snapshot_id for c in held.values()}
    for commit in order:
        if commit.snapshot_id in planned:
            continue
        planned.add(commit.snapshot_id)
        parent = commit.parent_commit_id
        base_commit = (wanted.get(parent) or held.get(parent)) if parent else None
        plan.append((commit.snapshot_id, base_commit.snapshot_id if base_commit else None))

    # Keep a manifest only while a later snapshot still needs it as its delta base.
    uses = Counter(base for _, base in plan if base)
    cache: dict[str, dict[str, str]] = {}
    snapshots: list[dict[str, Any]] = []
    object_ids: dict[str, None] = {}
    manifests = source.manifests([sid for sid, _ in plan])
    for (sid, base_sid), manifest in zip(plan, manifests, strict=True):
        if base_sid is None:
            upsert, remove, known = dict(manifest), [], set[str]()
        else:
            base = cache[base_sid] if base_sid in cache else source.manifest(base_sid)
            uses[base_sid] -= 1
            if uses[base_sid] > 0:
                cache[base_sid] = base
            else:
                cache.pop(base_sid, None)
            delta = diff_manifests(base, manifest)
            upsert, remove, known = delta.upsert, delta.remove, set(base.values())
        if uses[sid] > 0:
            cache[sid] = manifest
        snapshots.append(
            {
                "snapshot_id": sid,
                "parent_snapshot_id": base_sid,
                "delta_upsert": upsert,
                "delta_remove": remove,
            }
        )
        object_ids.update((o, None) for o in upsert.values() if o not in known)

    return {
        "mpack_version": MPACK_VERSION,
        "repo_id": None,
        "branch_heads": dict(branch_heads),
        "commits": [c.to_dict() for c in order],
        "snapshots": snapshots,
        "objects": [
            {"object_id": o, "content": b} for o, b in source.objects(list(object_ids)).items()
        ],
    }


def build_mpack(
    root: Path | str,
    tips: Mapping[str, str] | Iterable[str] | None = None,
    have: Iterable[str] = (),
) -> dict[str, Any]:
    """The mpack of a local repository: ``tips`` are branch names or a branch->commit map.

    Without tips every branch with a commit is packed.
    """
    root = Path(root)
    if tips is None:
        heads = list_branches(root)
    elif isinstance(tips, Mapping):
        heads = dict(tips)
    else:
        heads = {}
        for branch in tips:
            head = read_branch_ref(root, branch)
            if head is None:
                raise MuseError("missing_commit", "branch has no commits", branch)
            heads[branch] = head
    pack = build_pack(LocalHistory(root), heads, have)
    try:
        pack["repo_id"] = read_repo_info(root).get("repo_id")
    except (OSError, ValueError):
        pack["repo_id"] = None
    return pack


@dataclass(frozen=True)
class ObjectEntry:
    """Where an object's bytes sit in the pack, and the digest they actually hash to."""

    object_id: Any
    offset: int
    length: int
    digest: str


@dataclass
class ParsedMpack:
    key: str
    size: int
    fields: dict[str, Any] = field(default_factory=dict)
    objects: list[ObjectEntry] = field(default_factory=list)


ObjectSink = Callable[[str, bytes], None]


class _HashingReader(io.RawIOBase):
    def __init__(self, stream: IO[bytes], max_bytes: int) -> None:
        self._stream = stream
        self._max = max_bytes
        self.size = 0
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        chunk = self._stream.read(n)
        self.size += len(chunk)
        if self.size > self._max:
            raise MuseError("limit_exceeded", f"pack larger than {self._max} bytes", "mpack")
        self.sha.update(chunk)
        return chunk

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


_DECODE_ERRORS = (
    msgpack.OutOfData,
    msgpack.ExtraData,
    msgpack.FormatError,
    msgpack.StackError,
    ValueError,
    TypeError,
)


def parse_mpack(
    data: bytes | IO[bytes], limits: Limits = DEFAULT_LIMITS, object_sink: ObjectSink | None = None
) -> ParsedMpack:
    """Decode a pack from bytes or a stream, one object's bytes in memory at a time.

    Only the msgpack structure is checked here; the rules of the protocol are ``verify_mpack``'s.
    """
    stream: IO[bytes] = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    reader = _HashingReader(stream, limits.max_pack_bytes)
    # msgpack refuses a read_size above max_buffer_size, which small limits would produce.
    max_buffer = limits.max_object_bytes + limits.max_string_bytes
    unpacker = msgpack.Unpacker(
        reader,
        raw=False,
        strict_map_key=True,
        read_size=max(1, min(1 << 20, max_buffer)),
        max_buffer_size=max_buffer,
        max_bin_len=limits.max_object_bytes,
        max_str_len=limits.max_string_bytes,
        max_array_len=max(limits.max_objects, limits.max_commits, limits.max_manifest_entries),
        max_map_len=limits.max_manifest_entries,
        max_ext_len=0,
    )
    parsed = ParsedMpack(key="", size=0)
    seen: set[str] = set()
    try:
        for _ in range(unpacker.read_map_header()):
            name = unpacker.unpack()
            if not isinstance(name, str):
                raise MuseError("invalid_type", "top-level keys must be strings", repr(name))
            if name in seen:
                raise MuseError("malformed_mpack", "duplicate top-level key", name)
            seen.add(name)
            if name == "objects":
                _parse_objects(unpacker, parsed, limits, object_sink)
            else:
                parsed.fields[name] = unpacker.unpack()
        consumed = unpacker.tell()
    except MuseError:
        raise
    except msgpack.OutOfData:
        raise MuseError("malformed_mpack", "pack is truncated", "mpack") from None
    except msgpack.BufferFull:
        raise MuseError("limit_exceeded", "a pack item exceeds the size limits", "mpack") from None
    except _DECODE_ERRORS as exc:
        if "exceeds max_" in str(exc):
            raise MuseError("limit_exceeded", str(exc), "mpack") from None
        raise MuseError("malformed_mpack", f"not a msgpack map: {exc}", "mpack") from None
    reader.drain()
    if reader.size != consumed:
        # Any byte after the top-level map, even an incomplete msgpack value, is refused.
        raise MuseError("malformed_mpack", "bytes follow the pack's top-level map", "mpack")
    parsed.key = "sha256:" + reader.sha.hexdigest()
    parsed.size = reader.size
    return parsed


def _read_header(read: Callable[[], int], where: str, kind: str) -> int:
    """An array or map header; any other msgpack type there is a type error, not a format one."""
    try:
        return read()
    except msgpack.OutOfData:
        raise
    except ValueError:
        raise MuseError("invalid_type", f"{where} must be {kind}", where) from None


def _parse_objects(
    unpacker: msgpack.Unpacker, parsed: ParsedMpack, limits: Limits, sink: ObjectSink | None
) -> None:
    count = _read_header(unpacker.read_array_header, "objects", "an array")
    if count > limits.max_objects:
        raise MuseError("limit_exceeded", f"more than {limits.max_objects} objects", "objects")
    for index in range(count):
        object_id: Any = None
        content: Any = None
        end = 0
        for _ in range(_read_header(unpacker.read_map_header, f"objects[{index}]", "a map")):
            key = unpacker.unpack()
            value = unpacker.unpack()
            if key == "object_id":
                object_id = value
            elif key == "content":
                content, end = value, unpacker.tell()
        if not isinstance(content, bytes):
            raise MuseError(
                "invalid_type", f"objects[{index}].content must be bin", repr(object_id)
            )
        digest = hashlib.sha256(content).hexdigest()
        parsed.objects.append(
            ObjectEntry(
                object_id=object_id, offset=end - len(content), length=len(content), digest=digest
            )
        )
        if sink is not None and digest == object_id:
            sink(object_id, content)


def decode_mpack(data: bytes, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The whole pack as a dict, blobs included (for small packs and tests)."""
    parsed = parse_mpack(data, limits)
    pack = dict(parsed.fields)
    pack["objects"] = [
        {"object_id": e.object_id, "content": data[e.offset : e.offset + e.length]}
        for e in parsed.objects
    ]
    return pack
