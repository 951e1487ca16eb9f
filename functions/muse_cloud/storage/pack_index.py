"""Pack indexes (like git's .idx and multi-pack-index files): where each object of a repository
sits, in which uploaded pack, at which offset.

Every ingested pack has one PACK item, the source of truth: it holds the pack's sorted index
inline when small, or the S3 key of it. As packs accumulate, their indexes are merged into one
multi-pack index (MIDX) in S3, named by its content hash, which the PACK item ``PACK#MIDX``
points to. Each indexed pack also has an unfolded mark (``PACK#MIDX#<mpack>``, a copy of its
PACK item) until a MIDX covering it is pointed to: a reader reads the pointer and the marks in
one Query, however many packs the repository has (listing every PACK item made a push's reads
grow with the pushes before it). The pointer moves only by conditional write, in the transaction
that removes the marks of what it folded, each only while it still names the index folded; so a
fold that loses a race, or a pack indexed while another push folds, never loses an entry. Index
files are named by their content, so a container caches them without ever having to invalidate.
"""

from __future__ import annotations

import bisect
import hashlib
import struct
from collections import OrderedDict
from collections.abc import Collection, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

from muse_cloud.domain.errors import ServiceError
from muse_cloud.storage import keys, layout
from muse_cloud.storage.backend import (
    NEW_ITEM,
    Bucket,
    Condition,
    ConditionFailed,
    Delete,
    Equals,
    Item,
    Put,
    Table,
)
from muse_cloud.storage.layout import UploadKey

_ENTRY = struct.Struct(">32sQQ")
# A MIDX entry names its pack by position in the MIDX's list of packs.
_MIDX_ENTRY = struct.Struct(">32sIQQ")
_MIDX_MAGIC = b"MIDX1"
_MIDX_HEADER = struct.Struct(">5sI")
# A pack index this small rides in its PACK item, saving a PUT on the push and a GET on the
# read; a larger one would make every listing of the PACK items read it again.
INLINE_INDEX_BYTES = 16 * 1024
# Pack indexes the MIDX may leave uncovered before a push folds them in: a reader GETs at most
# this many of them, and a push stays within its S3 request budget.
FOLD_AFTER_PACKS = 4
_CACHE_BYTES = 256 * 1024 * 1024
# On the pointer: every pack its MIDX does not cover has an unfolded mark. A pointer without it
# (written before marks existed) is read as before, by listing the PACK items, until a fold.
_MARKS = "marks_unfolded"
# The marks one fold removes, within a transaction's 100 actions (the pointer is one more).
_MARKS_PER_FOLD = 64


@dataclass(frozen=True)
class ObjectLocation:
    """Where an object's bytes sit: in which uploaded pack, at which offset."""

    object_id: str
    s3_key: str
    offset: int
    length: int


def encode_index(locations: Iterable[ObjectLocation]) -> bytes:
    """Sorted by object id, so it merges into the MIDX and reads the same however it was sent."""
    entries = {bytes.fromhex(loc.object_id): (loc.offset, loc.length) for loc in locations}
    return b"".join(_ENTRY.pack(oid, *entries[oid]) for oid in sorted(entries))


def decode_index(data: bytes, s3_key: str, wanted: Collection[str]) -> dict[str, ObjectLocation]:
    found: dict[str, ObjectLocation] = {}
    for raw_id, offset, length in _ENTRY.iter_unpack(data):
        object_id = raw_id.hex()
        if object_id in wanted:
            found[object_id] = ObjectLocation(object_id, s3_key, offset, length)
    return found


@dataclass(frozen=True)
class MultiPackIndex:
    """A merge of pack indexes: each folded pack with the digest of the index folded (a pack
    whose PACK item now holds another index, as a rerun after a crash writes, is not covered),
    and every entry sorted by object id."""

    packs: tuple[tuple[str, str], ...]
    entries: bytes

    @classmethod
    def decode(cls, data: bytes) -> MultiPackIndex:
        magic, count = _MIDX_HEADER.unpack_from(data)
        if magic != _MIDX_MAGIC:
            raise ValueError("not a multi-pack index")
        at = _MIDX_HEADER.size
        packs = tuple(
            (
                data[at + 64 * n : at + 64 * n + 32].hex(),
                data[at + 64 * n + 32 : at + 64 * (n + 1)].hex(),
            )
            for n in range(count)
        )
        return cls(packs, data[at + 64 * count :])

    def encode(self) -> bytes:
        header = _MIDX_HEADER.pack(_MIDX_MAGIC, len(self.packs))
        listed = b"".join(bytes.fromhex(p) + bytes.fromhex(d) for p, d in self.packs)
        return header + listed + self.entries

    def __len__(self) -> int:
        return len(self.entries) // _MIDX_ENTRY.size

    def __getitem__(self, index: int) -> bytes:
        """The object id of the ``index``-th entry, so ``bisect`` searches the entries."""
        at = index * _MIDX_ENTRY.size
        return self.entries[at : at + 32]

    def find(self, repo_id: str, object_ids: Iterable[str]) -> dict[str, ObjectLocation]:
        found: dict[str, ObjectLocation] = {}
        count = len(self)
        for object_id in object_ids:
            raw = bytes.fromhex(object_id)
            at = bisect.bisect_left(self, raw)
            if at < count and self[at] == raw:
                _, pack, offset, length = _MIDX_ENTRY.unpack_from(
                    self.entries, at * _MIDX_ENTRY.size
                )
                s3_key = UploadKey(repo_id, self.packs[pack][0]).s3_key
                found[object_id] = ObjectLocation(object_id, s3_key, offset, length)
        return found


def fold(base: MultiPackIndex | None, indexes: dict[str, bytes]) -> MultiPackIndex:
    """``base`` with the pack indexes (by pack hash) merged in; the first pack holding an object
    keeps it."""
    packs = list(base.packs if base else ())
    merged: dict[bytes, bytes] = {}
    if base is not None:
        for at in range(0, len(base.entries), _MIDX_ENTRY.size):
            merged[base.entries[at : at + 32]] = base.entries[at + 32 : at + _MIDX_ENTRY.size]
    for mpack_hex, data in indexes.items():
        ordinal = len(packs)
        packs.append((mpack_hex, hashlib.sha256(data).hexdigest()))
        for raw_id, offset, length in _ENTRY.iter_unpack(data):
            merged.setdefault(raw_id, _MIDX_ENTRY.pack(raw_id, ordinal, offset, length)[32:])
    return MultiPackIndex(tuple(packs), b"".join(k + merged[k] for k in sorted(merged)))


class _ContentCache:
    """Index files by S3 key, least recently used first out. Keys name content, so an entry
    is never stale."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.entries: OrderedDict[str, bytes | MultiPackIndex] = OrderedDict()

    def get(self, key: str) -> bytes | MultiPackIndex | None:
        value = self.entries.get(key)
        if value is not None:
            self.entries.move_to_end(key)
        return value

    def put(self, key: str, value: bytes | MultiPackIndex) -> None:
        self.entries[key] = value
        self.size += _size(value)
        while self.size > self.limit and len(self.entries) > 1:
            _, dropped = self.entries.popitem(last=False)
            self.size -= _size(dropped)


def _size(value: bytes | MultiPackIndex) -> int:
    return len(value) if isinstance(value, bytes) else len(value.entries)


@dataclass(frozen=True)
class StoredPacks:
    """Every PACK item of a repository at one moment, by pack hash, and the MIDX pointed to."""

    midx_key: str | None
    items: dict[str, Item]
    # Whether the pointer says every pack its MIDX does not cover has an unfolded mark.
    marked: bool = False

    def index_files(self, leaving_out: Collection[str] = ()) -> set[str]:
        """The S3 keys of the pack indexes the items name (but those of ``leaving_out``)."""
        return {
            str(item["index_key"])
            for mpack_hex, item in self.items.items()
            if "index_key" in item and mpack_hex not in leaving_out
        }


def _index_of(item: Item) -> bytes | str | None:
    """A PACK item's index: its bytes when inline, else their S3 key; None before indexing."""
    if "index" in item:
        return bytes(item["index"])
    if "index_key" in item:
        return str(item["index_key"])
    return None


@dataclass(frozen=True)
class PackListing:
    """The repository's packs at one moment: the MIDX pointed to, the packs with an index it
    does not cover (inline index bytes, or the S3 key of them), and the unfolded marks read
    (by pack hash, the digest of the index each names), which a fold removes."""

    midx_key: str | None
    uncovered: dict[str, bytes | str]
    marks: dict[str, str] = field(default_factory=dict)


@dataclass
class PackIndex:
    """A repository's objects, found through the indexes of the packs that brought them. Index
    files are read once per container (``cache``)."""

    table: Table
    bucket: Bucket
    cache: _ContentCache = field(default_factory=lambda: _ContentCache(_CACHE_BYTES))

    def record(
        self, repo_id: str, s3_key: str, mpack_hex: str, locations: Sequence[ObjectLocation]
    ) -> None:
        """Write the pack's PACK item, the mark that ingestion began writing this pack (so the
        pack must never expire), with the pack's object index (``index``) in the same write."""
        if locations:
            self.index(repo_id, locations)
        else:
            self.table.put(self._item(repo_id, mpack_hex, s3_key, 0))

    def index(self, repo_id: str, locations: Sequence[ObjectLocation]) -> None:
        """Make the objects findable: each pack's sorted index into its PACK item (inline or in
        S3), then a fold into the MIDX once enough pack indexes are uncovered."""
        by_pack: dict[str, list[ObjectLocation]] = {}
        written: list[Item] = []
        for loc in locations:
            by_pack.setdefault(loc.s3_key, []).append(loc)
        for s3_key, locs in by_pack.items():
            upload = UploadKey.parse(s3_key)
            if upload is None or upload.repo_id != repo_id:
                raise ValueError(f"{s3_key} is no upload of repository {repo_id}")
            item = self._item(repo_id, upload.mpack_hex, s3_key, len(locs))
            data = encode_index(locs)
            item["index_sha256"] = hashlib.sha256(data).hexdigest()
            if len(data) <= INLINE_INDEX_BYTES:
                item["index"] = data
            else:
                item["index_key"] = layout.pack_index(
                    repo_id, upload.mpack_hex, item["index_sha256"]
                )
                self.bucket.put(item["index_key"], data)
                self.cache.put(item["index_key"], data)
            written += [item, {**item, **keys.unfolded_pack(repo_id, upload.mpack_hex)}]
        self.table.put_many(written)
        if by_pack:
            listing = self.listing(repo_id)
            if len(listing.uncovered) >= FOLD_AFTER_PACKS:
                self._fold(repo_id, listing)

    @staticmethod
    def _item(repo_id: str, mpack_hex: str, s3_key: str, objects: int) -> Item:
        return {**keys.pack(repo_id, mpack_hex), "s3_key": s3_key, "objects": objects}

    def holds(self, repo_id: str, mpack_hex: str) -> bool:
        """Whether objects of this pack were indexed (so the pack must never expire)."""
        return self.table.get(keys.pack(repo_id, mpack_hex)) is not None

    def stored(self, repo_id: str) -> StoredPacks:
        """Every PACK item: a read that grows with the packs, for garbage collection."""
        items = self.table.query(keys.repo_partition(repo_id), keys.PACK_SK)
        pointer = next((i for i in items if i["sk"] == keys.MIDX_SK), None)
        packs = {
            i["sk"][len(keys.PACK_SK) :]: i for i in items if not i["sk"].startswith(keys.MIDX_SK)
        }
        if pointer is None:
            return StoredPacks(None, packs)
        return StoredPacks(pointer["midx_key"], packs, bool(pointer.get(_MARKS)))

    def listing(self, repo_id: str) -> PackListing:
        items = self.table.query(keys.repo_partition(repo_id), keys.MIDX_SK)
        pointer = next((i for i in items if i["sk"] == keys.MIDX_SK), None)
        midx_key: str | None = pointer["midx_key"] if pointer else None
        if pointer is not None and pointer.get(_MARKS):
            candidates = {i["sk"][len(keys.UNFOLDED_SK) :]: i for i in items if i is not pointer}
        else:
            # Before the first fold, or a MIDX folded before packs were marked.
            candidates = self.stored(repo_id).items
        covered = dict(self._midx(midx_key).packs) if midx_key else {}
        uncovered: dict[str, bytes | str] = {}
        for mpack_hex, item in candidates.items():
            index = _index_of(item)
            if index is not None and covered.get(mpack_hex) != item.get("index_sha256"):
                uncovered[mpack_hex] = index
        marks = {
            i["sk"][len(keys.UNFOLDED_SK) :]: str(i.get("index_sha256"))
            for i in items
            if i["sk"].startswith(keys.UNFOLDED_SK)
        }
        return PackListing(midx_key, uncovered, marks)

    def holders(self, repo_id: str, object_ids: Collection[str]) -> dict[str, set[str]]:
        """Which of ``object_ids`` each indexed pack holds (an object pushed twice is in two),
        by pack hash: every pack index is read, not only the one a lookup stops at."""
        wanted = set(object_ids)
        found: dict[str, set[str]] = {}
        for mpack_hex, item in self.stored(repo_id).items.items():
            index = _index_of(item)
            if index is not None:
                s3_key = UploadKey(repo_id, mpack_hex).s3_key
                found[mpack_hex] = set(decode_index(self._index_bytes(index), s3_key, wanted))
        return found

    def forget(self, repo_id: str, dead: Collection[str]) -> None:
        """Make the objects of the ``dead`` packs unfindable, so that their bytes can go: the
        MIDX is rewritten without them first (a reader finds objects there before it looks at
        the PACK items), then their PACK items are deleted."""
        if not dead:
            return
        stored = self.stored(repo_id)
        if stored.midx_key is not None:
            midx = self._midx(stored.midx_key)
            if any(mpack_hex in dead for mpack_hex, _ in midx.packs):
                self._fold_without(repo_id, stored, midx, dead)
        self.table.delete_many(
            [keys.unfolded_pack(repo_id, mpack_hex) for mpack_hex in dead]
            + [keys.pack(repo_id, mpack_hex) for mpack_hex in dead]
        )

    def _fold_without(
        self, repo_id: str, stored: StoredPacks, midx: MultiPackIndex, dead: Collection[str]
    ) -> None:
        """A MIDX of the packs ``midx`` covers but ``dead``, in the same order (so an object in
        several keeps the pack it had), moved to by conditional write as ``_fold`` moves it."""
        kept: dict[str, bytes] = {}
        for mpack_hex, digest in midx.packs:
            item = stored.items.get(mpack_hex)
            index = _index_of(item) if item and item.get("index_sha256") == digest else None
            if mpack_hex not in dead and index is not None:
                kept[mpack_hex] = self._index_bytes(index)
        pointer = keys.midx_pointer(repo_id)
        moved = Equals("midx_key", stored.midx_key)
        if not kept:
            self.table.delete(pointer, moved)
            return
        data = fold(None, kept).encode()
        new_key = layout.multi_pack_index(repo_id, data)
        self.bucket.put(new_key, data)
        self.table.put({**pointer, "midx_key": new_key, _MARKS: stored.marked}, moved)

    def known(self, repo_id: str, object_ids: Collection[str]) -> set[str]:
        return set(self.locate_all(repo_id, object_ids))

    def locate(self, repo_id: str, object_id: str) -> ObjectLocation | None:
        return self.locate_all(repo_id, [object_id]).get(object_id)

    def locate_all(self, repo_id: str, object_ids: Collection[str]) -> dict[str, ObjectLocation]:
        """Where each held object is: one Query of the PACK items, then the MIDX and the
        uncovered pack indexes, each read once per container."""
        wanted = set(object_ids)
        if not wanted:
            return {}
        listing = self.listing(repo_id)
        found = self._midx(listing.midx_key).find(repo_id, wanted) if listing.midx_key else {}
        for mpack_hex, index in listing.uncovered.items():
            rest = wanted - found.keys()
            if not rest:
                break
            s3_key = UploadKey(repo_id, mpack_hex).s3_key
            found.update(decode_index(self._index_bytes(index), s3_key, rest))
        return found

    def _fold(self, repo_id: str, listing: PackListing) -> None:
        """Write a MIDX of everything listed and move the pointer to it unless another push
        moved it first, removing the marks of what it now covers (each only while it names
        the index folded: a rerun may have written another since)."""
        base = self._midx(listing.midx_key) if listing.midx_key else None
        indexes = {
            mpack_hex: self._index_bytes(index)
            for mpack_hex, index in sorted(listing.uncovered.items())
        }
        midx = fold(base, indexes)
        data = midx.encode()
        new_key = layout.multi_pack_index(repo_id, data)
        self.bucket.put(new_key, data)
        # Named by its content, so never stale: the next fold here starts from it unread.
        self.cache.put(new_key, midx)
        moved: Condition = Equals("midx_key", listing.midx_key) if listing.midx_key else NEW_ITEM
        pointer = {**keys.midx_pointer(repo_id), "midx_key": new_key, _MARKS: True}
        covered = dict(midx.packs)
        folded = [
            Delete(keys.unfolded_pack(repo_id, mpack_hex), Equals("index_sha256", digest))
            for mpack_hex, digest in listing.marks.items()
            if covered.get(mpack_hex) == digest
        ]
        with suppress(ConditionFailed):
            # Another push folded first, or a mark changed: the marks left and the MIDX
            # pointed to still cover every entry, and a later push folds again.
            if folded:
                self.table.transact([Put(pointer, moved), *folded[:_MARKS_PER_FOLD]])
            else:
                self.table.put(pointer, moved)

    def _index_bytes(self, index: bytes | str) -> bytes:
        if isinstance(index, bytes):
            return index
        cached = self.cache.get(index)
        if isinstance(cached, bytes):
            return cached
        data = self._read(index)
        self.cache.put(index, data)
        return data

    def _midx(self, key: str) -> MultiPackIndex:
        cached = self.cache.get(key)
        if isinstance(cached, MultiPackIndex):
            return cached
        midx = MultiPackIndex.decode(self._read(key))
        self.cache.put(key, midx)
        return midx

    def _read(self, key: str) -> bytes:
        data = self.bucket.get(key)
        if data is None:
            raise ServiceError("missing_value", "a pack index is gone from S3", key)
        return data
