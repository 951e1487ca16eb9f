"""The mpack: one msgpack map carrying commits, delta-encoded snapshots and objects.

``build_pack`` works from any ``HistorySource`` (a local ``.muse`` directory or the server's
store); ``parse_mpack`` decodes a stream without holding every blob at once, recording where
each object's bytes sit in the pack so the pack itself can serve them later.
"""

from __future__ import annotations

import hashlib
import heapq
import io
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sized
from dataclasses import dataclass, field
from functools import cached_property
from mmap import mmap
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar, runtime_checkable

import msgpack

from muse_core.commits import CommitReader, CommitRecord, has_commit
from muse_core.delta import diff_manifests
from muse_core.errors import MuseError, describe
from muse_core.ids import is_id
from muse_core.limits import DEFAULT_LIMITS, Limits
from muse_core.object_store import read_object
from muse_core.refs import list_branches, read_branch_ref
from muse_core.repo import read_repo_info
from muse_core.snapshots import read_snapshot
from muse_core.use_counted import UseCounted

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


@runtime_checkable
class NumberedHistory(HistorySource, Protocol):
    """A history that knows each commit's generation number (1 + its parents' highest), as
    git's commit-graph does: what a fetch lacks is found without walking all it holds."""

    def generation(self, commit_id: str) -> int:
        """The generation of a commit ``commits()`` returned."""
        ...


@dataclass(frozen=True)
class LocalHistory:
    """A ``HistorySource`` over a repository directory written in the client's format."""

    root: Path

    @cached_property
    def _read_commit(self) -> CommitReader:
        return CommitReader(self.root)

    def commits(self, commit_ids: Collection[str]) -> dict[str, CommitRecord]:
        found: dict[str, CommitRecord] = {}
        for commit_id in commit_ids:
            # Read, not stat then read: a walk of a long history reads every commit file.
            try:
                found[commit_id] = self._read_commit(commit_id)
            except FileNotFoundError:
                continue
        return found

    def manifest(self, snapshot_id: str) -> dict[str, str]:
        return read_snapshot(self.root, snapshot_id).manifest

    def manifests(self, snapshot_ids: list[str]) -> Iterator[dict[str, str]]:
        return (self.manifest(sid) for sid in snapshot_ids)

    def objects(self, object_ids: list[str]) -> dict[str, bytes]:
        return {oid: read_object(self.root, oid) for oid in object_ids}


def mpack_key(data: bytes | mmap) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def encode_mpack(pack: Mapping[str, Any]) -> bytes:
    return msgpack.packb(pack, use_bin_type=True)


def walk_commits(
    source: HistorySource, starts: Iterable[str], stop: Collection[str] = ()
) -> Iterator[dict[str, CommitRecord]]:
    """The commits reachable from ``starts`` that the source holds (unknown ids are skipped),
    a generation of the walk at a time; the walk does not enter ``stop``."""
    seen: set[str] = set()
    frontier = {c for c in starts if c and c not in stop}
    while frontier:
        found = source.commits(frontier)
        seen.update(frontier)
        yield found
        frontier = {
            p for r in found.values() for p in r.parent_ids if p not in seen and p not in stop
        }


def reachable_commits(
    source: HistorySource, starts: Iterable[str], stop: Collection[str] = ()
) -> dict[str, CommitRecord]:
    """Every commit reachable from ``starts`` without entering ``stop`` that the source holds."""
    seen: dict[str, CommitRecord] = {}
    for found in walk_commits(source, starts, stop):
        seen.update(found)
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


def _manifest(cache: UseCounted[dict[str, str]], snapshot_id: str) -> dict[str, str]:
    found, _ = cache.take(snapshot_id)
    assert found is not None, "a source's manifest() raises for what it does not hold"
    return found


# One snapshot of a pack: its id, its delta base (the first parent's snapshot) and the snapshots
# of its other parents. The receiver holds, or gets from this pack, every object those name.
_Planned = tuple[str, str | None, list[str]]


def build_pack(
    source: HistorySource, branch_heads: Mapping[str, str], have: Iterable[str] = ()
) -> dict[str, Any]:
    """The mpack of what is reachable from ``branch_heads`` minus what ``have`` reaches.

    A snapshot the receiver holds is not sent again; from a ``NumberedHistory`` that holds only
    for the held commits no older than the oldest one sent (a snapshot identical to an older
    one is sent, which the receiver takes as it takes any snapshot it holds already).
    """
    pack, object_ids = _pack_without_objects(source, branch_heads, have)
    pack["objects"] = [
        {"object_id": o, "content": b} for o, b in source.objects(object_ids).items()
    ]
    return pack


def _pack_without_objects(
    source: HistorySource, branch_heads: Mapping[str, str], have: Iterable[str]
) -> tuple[dict[str, Any], list[str]]:
    """Every field of ``build_pack``'s pack but ``objects``, and the ids of the objects."""
    wanted, held = wanted_and_held(source, branch_heads.values(), have)
    order = topological_order(wanted)
    snapshots: list[dict[str, Any]] = []
    object_ids: dict[str, None] = {}
    for delta in snapshot_deltas(source, snapshot_plan(order, wanted, held)):
        snapshots.append(delta.wire)
        object_ids.update(dict.fromkeys(delta.new_objects))
    pack = {
        "mpack_version": MPACK_VERSION,
        "repo_id": None,
        "branch_heads": dict(branch_heads),
        "commits": [c.to_dict() for c in order],
        "snapshots": snapshots,
    }
    return pack, list(object_ids)


def wanted_and_held(
    source: HistorySource, heads: Iterable[str], have: Iterable[str]
) -> tuple[dict[str, CommitRecord], dict[str, CommitRecord]]:
    """What ``heads`` reach and ``have`` does not, and the held commits the pack's snapshots
    may be encoded against."""
    if isinstance(source, NumberedHistory):
        return _painted(source, heads, have)
    held = reachable_commits(source, have)
    # Everything a held commit reaches is held: the walk of what is wanted stops there.
    return reachable_commits(source, heads, stop=held), held


def _painted(
    source: NumberedHistory, heads: Iterable[str], have: Iterable[str]
) -> tuple[dict[str, CommitRecord], dict[str, CommitRecord]]:
    """What ``heads`` reach and ``have`` does not, and the held commits seen on the way.

    Commits are taken newest generation first, so each is decided (held when a held commit
    reaches it) once every commit that could reach it was; the walk ends when no commit left
    may be wanted, however long the held history below.
    """
    held_by: dict[str, bool] = {}  # every commit queued: held, or (so far) wanted
    records: dict[str, CommitRecord] = {}
    queue: list[tuple[int, str]] = []
    undecided = 0

    def reach(commit_ids: Iterable[str], held: bool) -> None:
        nonlocal undecided
        commit_ids = list(commit_ids)
        records.update(source.commits([c for c in commit_ids if c not in held_by]))
        for commit_id in commit_ids:
            if commit_id in held_by:
                # Not taken yet (it is older than what reaches it): held after all.
                if held and not held_by[commit_id]:
                    held_by[commit_id] = True
                    undecided -= 1
            elif commit_id in records:
                held_by[commit_id] = held
                undecided += not held
                heapq.heappush(queue, (-source.generation(commit_id), commit_id))

    reach(have, held=True)
    reach(heads, held=False)
    wanted: dict[str, CommitRecord] = {}
    while undecided:
        _, commit_id = heapq.heappop(queue)
        record = records[commit_id]
        if not held_by[commit_id]:
            undecided -= 1
            wanted[commit_id] = record
        reach(record.parent_ids, held_by[commit_id])
    return wanted, {c: records[c] for c, held in held_by.items() if held}


def snapshot_plan(
    order: list[CommitRecord],
    wanted: Mapping[str, CommitRecord],
    held: Mapping[str, CommitRecord],
) -> list[_Planned]:
    """Each snapshot the pack carries, once, with what it is encoded against."""
    plan: list[_Planned] = []
    planned = {c.snapshot_id for c in held.values()}
    for commit in order:
        if commit.snapshot_id in planned:
            continue
        planned.add(commit.snapshot_id)
        first = commit.parent_commit_id
        base_commit = (wanted.get(first) or held.get(first)) if first else None
        base_sid = base_commit.snapshot_id if base_commit else None
        parents = (wanted.get(p) or held.get(p) for p in commit.parent_ids)
        others = sorted({p.snapshot_id for p in parents if p is not None} - {base_sid})
        plan.append((commit.snapshot_id, base_sid, others))
    return plan


@dataclass(frozen=True)
class SnapshotDelta:
    """One snapshot of a pack as sent, and what it costs the receiver to take it."""

    wire: dict[str, Any]
    # Objects it adds that neither its base nor its other parents name, each once per walk.
    new_objects: list[str]
    entries: int
    base_entries: int
    # The bytes hashed to check its id (``SortedManifest.payload_bytes``).
    payload_bytes: int


def snapshot_deltas(source: HistorySource, plan: list[_Planned]) -> Iterator[SnapshotDelta]:
    """The snapshots as deltas, in plan order."""
    cache: UseCounted[dict[str, str]] = UseCounted(
        (s for _, base, more in plan for s in (base, *more) if s), source.manifest
    )
    seen_objects: set[str] = set()
    # A snapshot's payload is its base's with the delta's paths added and removed (an object
    # id's length never changes), so only a snapshot whose base was not walked is measured whole.
    payloads: dict[str, int] = {}
    manifests = source.manifests([sid for sid, _, _ in plan])
    for (sid, base_sid, other_sids), manifest in zip(plan, manifests, strict=True):
        base = _manifest(cache, base_sid) if base_sid else {}
        known = set(base.values())
        for other in other_sids:
            known.update(_manifest(cache, other).values())
        cache.offer(sid, manifest)
        delta = diff_manifests(base, manifest)
        base_payload = payloads.get(base_sid) if base_sid else 0
        if base_payload is None:
            base_payload = _payload_bytes(base)
        added = [p for p in delta.upsert if p not in base]
        payloads[sid] = base_payload + _payload_bytes(added) - _payload_bytes(delta.remove)
        new_objects = [
            o
            for o in dict.fromkeys(delta.upsert.values())
            if o not in known and o not in seen_objects
        ]
        seen_objects.update(new_objects)
        yield SnapshotDelta(
            wire={
                "snapshot_id": sid,
                "parent_snapshot_id": base_sid,
                "delta_upsert": delta.upsert,
                "delta_remove": delta.remove,
            },
            new_objects=new_objects,
            entries=len(manifest),
            base_entries=len(base),
            payload_bytes=payloads[sid],
        )


# An entry of a manifest's hashed payload beyond its path: NUL, a 64-hex object id, and the
# separator ``SortedManifest.payload_bytes`` counts.
_ENTRY_OVERHEAD = 66


def _payload_bytes(paths: Iterable[str]) -> int:
    return sum(len(p.encode()) + _ENTRY_OVERHEAD for p in paths)


def build_mpack(
    root: Path | str,
    tips: Mapping[str, str] | Iterable[str] | None = None,
    have: Iterable[str] = (),
    out: IO[bytes] | None = None,
) -> dict[str, Any]:
    """The mpack of a local repository: ``tips`` are a branch->commit map, or branch names and
    commit ids (an id of a commit the repository holds is taken as a commit, as MuseHub's
    ``build_mpack(repo, [head_commit_id], have=[])`` passes it). A commit tip is listed under
    every branch it heads; one that heads none is packed without a branch head.

    Without tips every branch with a commit is packed.

    With ``out``, the pack is written there as it is built, ``encode_mpack``'s bytes one object
    at a time, and comes back without its objects' contents (each object its ``object_id``
    alone): what is held at once is then the commits, the snapshot deltas, the manifests a delta
    is still to be taken against (one, along a linear history) and one object, never the pack's
    objects together (296 MiB of memory to build and encode an 82 MiB pack in memory).
    """
    source = LocalHistory(Path(root))
    pack, object_ids = _local_pack_without_objects(source, tips, have)
    if out is None:
        pack["objects"] = [
            {"object_id": o, "content": b} for o, b in source.objects(object_ids).items()
        ]
        return pack
    write_mpack(source.root, pack, object_ids, out)
    return pack


def write_mpack(root: Path, pack: dict[str, Any], object_ids: list[str], out: IO[bytes]) -> None:
    """``encode_mpack``'s bytes of ``pack`` with the objects ``object_ids`` read from ``root``
    one at a time; ``pack`` gets its objects as their ids alone."""
    packer = msgpack.Packer(use_bin_type=True)
    out.write(packer.pack_map_header(len(pack) + 1))
    for key, value in pack.items():
        out.write(packer.pack(key))
        out.write(packer.pack(value))
    out.write(packer.pack("objects"))
    out.write(packer.pack_array_header(len(object_ids)))
    for object_id in object_ids:
        content = read_object(root, object_id)
        out.write(packer.pack({"object_id": object_id, "content": content}))
    pack["objects"] = [{"object_id": o} for o in object_ids]


def _local_pack_without_objects(
    source: LocalHistory, tips: Mapping[str, str] | Iterable[str] | None, have: Iterable[str]
) -> tuple[dict[str, Any], list[str]]:
    root = source.root
    untracked: dict[str, str] = {}
    if tips is None:
        heads = list_branches(root)
    elif isinstance(tips, Mapping):
        heads = dict(tips)
    else:
        heads = {}
        branches = list_branches(root)
        for tip in tips:
            if is_id(tip) and has_commit(root, tip):
                named = {b: c for b, c in branches.items() if c == tip}
                heads.update(named)
                if not named:
                    untracked[f"want/{tip}"] = tip
                continue
            head = read_branch_ref(root, tip)
            if head is None:
                raise MuseError("missing_commit", "branch has no commits", tip)
            heads[tip] = head
    pack, object_ids = _pack_without_objects(source, {**heads, **untracked}, have)
    pack["branch_heads"] = heads
    pack["repo_id"] = local_repo_id(root)
    return pack, object_ids


def local_repo_id(root: Path) -> str | None:
    """The repository's own id, which a pack carries for information only."""
    try:
        found = read_repo_info(root).get("repo_id")
    except (OSError, ValueError):
        return None
    return found if isinstance(found, str) else None


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

# Only these top-level keys are decoded; any other is skipped without building its value.
_PROTOCOL_KEYS = frozenset(
    {"mpack_version", "repo_id", "branch_heads", "commits", "snapshots", "objects"}
)
_SizedT = TypeVar("_SizedT", bound=Sized)


class _DecodeBudget:
    """Counts the map and array entries decoding builds, as the unpacker's container hooks.

    A decoded item costs tens of bytes of memory however few bytes encode it, so items must be
    paid for by the pack bytes read so far (object contents excepted: those are streamed, never
    held), beyond a fixed allowance. Bytes read run at most one read ahead of the decoder.
    """

    def __init__(self, limits: Limits, reader: _HashingReader) -> None:
        self._allowance = limits.max_manifest_entries
        self._bytes_per_item = limits.pack_bytes_per_decoded_item
        self._reader = reader
        self.blob_bytes = 0
        self.items = 0
        self.where = "mpack"

    def charge(self, container: _SizedT) -> _SizedT:
        self.items += 1 + len(container)  # an empty container still costs an object
        paid = (self._reader.size - self.blob_bytes) // self._bytes_per_item
        if self.items > self._allowance + paid:
            raise MuseError(
                "limit_exceeded",
                f"more than {self._allowance} decoded map and array entries beyond one per "
                f"{self._bytes_per_item} pack bytes",
                self.where,
            )
        return container


def parse_mpack(
    data: bytes | IO[bytes], limits: Limits = DEFAULT_LIMITS, object_sink: ObjectSink | None = None
) -> ParsedMpack:
    """Decode a pack from bytes or a stream, one object's bytes in memory at a time.

    Only the msgpack structure and the pack's size limits are checked here; the rules of the
    protocol are ``verify_mpack``'s. Top-level keys outside the protocol are skipped.
    """
    stream: IO[bytes] = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    reader = _HashingReader(stream, limits.max_pack_bytes)
    budget = _DecodeBudget(limits, reader)
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
        # The commits, snapshots and objects arrays are read header first and checked against
        # their own limits; any other container is at most a manifest's size.
        max_array_len=limits.max_manifest_entries,
        max_map_len=limits.max_manifest_entries,
        max_ext_len=0,
        list_hook=budget.charge,
        object_hook=budget.charge,
    )
    parsed = ParsedMpack(key="", size=0)
    seen: set[str] = set()
    try:
        for _ in range(unpacker.read_map_header()):
            budget.where = "mpack"
            name = unpacker.unpack()
            if not isinstance(name, str):
                raise MuseError("invalid_type", "top-level keys must be strings", describe(name))
            if name not in _PROTOCOL_KEYS:
                unpacker.skip()
                continue
            if name in seen:
                raise MuseError("malformed_mpack", "duplicate top-level key", name)
            seen.add(name)
            budget.where = name
            if name == "objects":
                _parse_objects(unpacker, parsed, limits, object_sink, budget)
            elif name == "commits":
                parsed.fields[name] = _parse_records(unpacker, name, limits.max_commits, budget)
            elif name == "snapshots":
                parsed.fields[name] = _parse_records(unpacker, name, limits.max_snapshots, budget)
            else:
                parsed.fields[name] = unpacker.unpack()
        consumed = unpacker.tell()
    except MuseError:
        raise
    except msgpack.OutOfData:
        raise MuseError("malformed_mpack", "pack is truncated", "mpack") from None
    except msgpack.StackError:
        # StackError carries no message of its own.
        raise MuseError(
            "malformed_mpack", "nests more maps and arrays than msgpack decodes", budget.where
        ) from None
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


def _parse_records(
    unpacker: msgpack.Unpacker, name: str, limit: int, budget: _DecodeBudget
) -> list[Any]:
    """The commits or snapshots array, refused on its length before any element is built."""
    count = _read_header(unpacker.read_array_header, name, "an array")
    if count > limit:
        raise MuseError("limit_exceeded", f"more than {limit} {name}", name)
    records: list[Any] = []
    for index in range(count):
        budget.where = f"{name}[{index}]"
        records.append(unpacker.unpack())
    return records


def _parse_objects(
    unpacker: msgpack.Unpacker,
    parsed: ParsedMpack,
    limits: Limits,
    sink: ObjectSink | None,
    budget: _DecodeBudget,
) -> None:
    count = _read_header(unpacker.read_array_header, "objects", "an array")
    if count > limits.max_objects:
        raise MuseError("limit_exceeded", f"more than {limits.max_objects} objects", "objects")
    for index in range(count):
        object_id: Any = None
        content: Any = None
        end = 0
        budget.where = f"objects[{index}]"
        for _ in range(_read_header(unpacker.read_map_header, f"objects[{index}]", "a map")):
            key = unpacker.unpack()
            if key == "object_id":
                object_id = unpacker.unpack()
            elif key == "content":
                content, end = unpacker.unpack(), unpacker.tell()
            else:
                unpacker.skip()
        if not isinstance(content, bytes):
            raise MuseError(
                "invalid_type", f"objects[{index}].content must be bin", describe(object_id)
            )
        budget.blob_bytes += len(content)
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
