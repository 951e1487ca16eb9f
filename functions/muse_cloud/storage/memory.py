"""In-memory ``Table`` and ``Bucket``: the stores' own code, with nothing but dictionaries below.

Items make the same round trip through DynamoDB's wire types as on AWS (numbers come back as
``Decimal``, ``None`` attributes vanish, a float is refused), conditions and updates are
evaluated as DynamoDB evaluates them, and every write holds one lock, so a transaction or a
conditional write is atomic as it is on AWS. The service layer's tests run on these.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import quote

from muse_cloud.storage.backend import (
    TRANSACTION_MAX,
    Action,
    Change,
    Check,
    Condition,
    ConditionFailed,
    Delete,
    Item,
    Key,
    Put,
    ReturnValues,
    StoredFile,
    Update,
    UploadTerms,
    holds,
)
from muse_cloud.storage.dynamo import from_wire, to_wire

# DynamoDB's item limit, counted as DynamoDB counts it: attribute names plus values.
MAX_ITEM_BYTES = 400 * 1024


def _size(wire: Mapping[str, Any]) -> int:
    total = 0
    for name, value in wire.items():
        total += len(name.encode())
        for kind, raw in value.items():
            if kind in ("S", "N"):
                total += len(str(raw).encode("utf-8", "surrogatepass"))
            elif kind == "B":
                total += len(raw)
            elif kind == "M":
                total += 3 + _size(raw)
            elif kind == "L":
                total += 3 + sum(_size({"": v}) for v in raw)
            else:
                total += 1
    return total


def _stored(item: Mapping[str, Any]) -> Item:
    wire = to_wire(item)
    if _size(wire) > MAX_ITEM_BYTES:
        raise ValueError(f"item {item.get('pk')}/{item.get('sk')} is over 400 KB")
    return from_wire(wire)


def _key_of(key: Mapping[str, Any]) -> tuple[str, str]:
    return (str(key["pk"]), str(key["sk"]))


@dataclass
class MemoryTable:
    items: dict[tuple[str, str], Item] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def get(self, key: Key) -> Item | None:
        with self._lock:
            found = self.items.get(_key_of(key))
            return dict(found) if found is not None else None

    def put(self, item: Mapping[str, Any], condition: Condition | None = None) -> None:
        self.transact([Put(item, condition)])

    def change(
        self,
        key: Key,
        update: Update,
        condition: Condition | None = None,
        returns: ReturnValues = "NONE",
    ) -> Item | None:
        with self._lock:
            old = self.get(key)
            self.transact([Change(key, update, condition)])
            new = self.get(key)
        return {"NONE": None, "ALL_OLD": old, "ALL_NEW": new}[returns]

    def delete(self, key: Key, condition: Condition | None = None) -> Item | None:
        with self._lock:
            old = self.get(key)
            self.transact([Delete(key, condition)])
        return old

    def transact(self, actions: Sequence[Action]) -> None:
        if len(actions) > TRANSACTION_MAX:
            raise ValueError(f"{len(actions)} actions in one transaction (at most 100)")
        with self._lock:
            keys = [_key_of(a.key) for a in actions]
            if len(set(keys)) != len(keys):
                raise ValueError("two actions of one transaction on one item")
            current = [self.items.get(k) for k in keys]
            failed = [
                not holds(a.condition, item) for a, item in zip(actions, current, strict=True)
            ]
            if any(failed):
                raise ConditionFailed(
                    ["ConditionalCheckFailed" if f else "None" for f in failed]
                    if len(actions) > 1
                    else ["ConditionalCheckFailed"]
                )
            written = [self._written(a, item) for a, item in zip(actions, current, strict=True)]
            for key, item in zip(keys, written, strict=True):
                if item is None:
                    self.items.pop(key, None)
                else:
                    self.items[key] = item

    @staticmethod
    def _written(action: Action, current: Item | None) -> Item | None:
        if isinstance(action, Put):
            return _stored(action.item)
        if isinstance(action, Change):
            return _stored(action.update.applied_to(current, action.key))
        if isinstance(action, Check):
            return current
        return None

    def put_many(self, items: Sequence[Mapping[str, Any]], ordered: bool = False) -> None:
        with self._lock:
            for item in items:
                self.items[_key_of(item)] = _stored(item)

    def get_many(self, keys: Iterable[Key], attributes: Sequence[str] = ()) -> list[Item]:
        with self._lock:
            found = [self.items[k] for k in {_key_of(k) for k in keys} if k in self.items]
            if not attributes:
                return [dict(item) for item in found]
            kept = ("pk", "sk", *attributes)
            return [{a: item[a] for a in kept if a in item} for item in found]

    def query(
        self, pk: str, sk_prefix: str, after: str | None = None, last: int | None = None
    ) -> list[Item]:
        with self._lock:
            found = [
                dict(self.items[key])
                for key in sorted(self.items)
                if key[0] == pk
                and key[1].startswith(sk_prefix)
                and (after is None or key[1] > after)
            ]
        return found if last is None else found[-last:] if last else []

    def delete_many(self, keys: Sequence[Key], ordered: bool = False) -> None:
        with self._lock:
            for key in keys:
                self.items.pop(_key_of(key), None)

    def scan_keys(self, pk_prefixes: Sequence[str]) -> Iterator[Key]:
        with self._lock:
            found = [k for k in self.items if k[0].startswith(tuple(pk_prefixes))]
        return iter([{"pk": pk, "sk": sk} for pk, sk in found])


@dataclass
class _Blob:
    data: bytes
    content_type: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    modified: float = field(default_factory=time.time)


@dataclass
class MemoryBucket:
    name: str = "memory"
    blobs: dict[str, _Blob] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            blob = self.blobs.get(key)
            return blob.data if blob else None

    def open(self, key: str) -> IO[bytes] | None:
        data = self.get(key)
        return io.BytesIO(data) if data is not None else None

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        data = self.get(key)
        if data is None:
            raise KeyError(key)
        return data[offset : offset + length]

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        with self._lock:
            self.blobs[key] = _Blob(bytes(data), content_type, dict(tags or {}))

    def exists(self, key: str) -> bool:
        with self._lock:
            return key in self.blobs

    def tag(self, key: str, tags: Mapping[str, str]) -> bool:
        with self._lock:
            blob = self.blobs.get(key)
            if blob is None:
                return False
            blob.tags = dict(tags)
            return True

    def tags_of(self, key: str) -> dict[str, str]:
        with self._lock:
            return dict(self.blobs[key].tags)

    def copy_range(self, source: str, offset: int, length: int, target: str) -> None:
        self.put(target, self.read_range(source, offset, length))

    def delete_prefix(self, prefix: str) -> list[tuple[str, str]]:
        return self.delete_keys([f.key for f in self.files(prefix)])

    def files(self, prefix: str) -> Iterator[StoredFile]:
        with self._lock:
            found = [
                StoredFile(key, len(blob.data), blob.modified)
                for key, blob in sorted(self.blobs.items())
                if key.startswith(prefix)
            ]
        return iter(found)

    def delete_keys(self, keys: Iterable[str]) -> list[tuple[str, str]]:
        with self._lock:
            for key in keys:
                self.blobs.pop(key, None)
        return []

    def upload_url(self, key: str, expires_in: int, terms: UploadTerms | None = None) -> str:
        return f"memory://{self.name}/{quote(key)}?method=PUT&expires_in={expires_in}"

    def download_url(self, key: str, expires_in: int) -> str:
        return f"memory://{self.name}/{quote(key)}?method=GET&expires_in={expires_in}"
