"""The two narrow interfaces every store is written against: a key-value table with conditional
writes (DynamoDB's model) and a bucket of blobs (S3's).

Conditions and updates are small values, not expression strings, so the same store code runs on
DynamoDB (``dynamo.DynamoTable`` renders them as expressions) and in memory
(``memory.MemoryTable`` evaluates them), as lakeFS's kv drivers share one ``SetIf``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal, Protocol

Item = dict[str, Any]
Key = dict[str, str]
# The most actions one transaction takes (DynamoDB's cap).
TRANSACTION_MAX = 100


class ConditionFailed(Exception):
    """A write's condition did not hold; for a transaction, ``reasons`` has one entry per action
    (``"ConditionalCheckFailed"`` where it failed, ``"None"`` elsewhere) when the table says."""

    def __init__(self, reasons: Sequence[str] = ()) -> None:
        super().__init__(", ".join(reasons) or "condition failed")
        self.reasons = list(reasons)

    def failed_at(self, index: int) -> bool:
        return index < len(self.reasons) and self.reasons[index] == "ConditionalCheckFailed"


# --- conditions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exists:
    attribute: str


@dataclass(frozen=True)
class Absent:
    attribute: str


@dataclass(frozen=True)
class Equals:
    attribute: str
    value: Any


@dataclass(frozen=True)
class Below:
    attribute: str
    value: Any


@dataclass(frozen=True)
class OneOf:
    attribute: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class All:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Any_:
    parts: tuple[Condition, ...]


Condition = Exists | Absent | Equals | Below | OneOf | All | Any_

NEW_ITEM = Absent("pk")


def all_of(*parts: Condition) -> Condition:
    return All(parts)


def any_of(*parts: Condition) -> Condition:
    return Any_(parts)


def holds(condition: Condition | None, item: Mapping[str, Any] | None) -> bool:
    """Whether ``condition`` holds for ``item`` (None: no item), as DynamoDB decides it."""
    if condition is None:
        return True
    found = item or {}
    match condition:
        case Exists(attribute):
            return attribute in found
        case Absent(attribute):
            return attribute not in found
        case Equals(attribute, value):
            return attribute in found and found[attribute] == value
        case Below(attribute, value):
            return attribute in found and found[attribute] < value
        case OneOf(attribute, values):
            return attribute in found and found[attribute] in values
        case All(parts):
            return all(holds(part, item) for part in parts)
        case Any_(parts):
            return any(holds(part, item) for part in parts)


# --- updates ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Update:
    """Attributes to set, to set only where absent, to add to (numbers; a missing one counts
    as 0), and to remove."""

    set: Mapping[str, Any] = field(default_factory=dict)
    set_if_absent: Mapping[str, Any] = field(default_factory=dict)
    add: Mapping[str, int] = field(default_factory=dict)
    remove: tuple[str, ...] = ()

    def applied_to(self, item: Mapping[str, Any] | None, key: Mapping[str, str]) -> Item:
        result: Item = {**(item or key)}
        result.update({k: v for k, v in self.set.items() if v is not None})
        for name in (k for k, v in self.set.items() if v is None):
            result.pop(name, None)
        for name, value in self.set_if_absent.items():
            result.setdefault(name, value)
        for name, amount in self.add.items():
            result[name] = int(result.get(name, 0)) + amount
        for name in self.remove:
            result.pop(name, None)
        return result


# --- transactions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Put:
    item: Mapping[str, Any]
    condition: Condition | None = None

    @property
    def key(self) -> Key:
        return {"pk": self.item["pk"], "sk": self.item["sk"]}


@dataclass(frozen=True)
class Change:
    key: Key
    update: Update
    condition: Condition | None = None


@dataclass(frozen=True)
class Delete:
    key: Key
    condition: Condition | None = None


@dataclass(frozen=True)
class Check:
    """Writes nothing: the transaction goes through only while ``condition`` holds for the
    item (DynamoDB's ConditionCheck), so what a write was decided on cannot change under it."""

    key: Key
    condition: Condition


Action = Put | Change | Delete | Check
ReturnValues = Literal["NONE", "ALL_NEW", "ALL_OLD"]


@dataclass(frozen=True)
class StoredFile:
    """One object of a bucket listing: its key, its size and when it was last written."""

    key: str
    size: int
    modified: float  # seconds since the epoch


@dataclass(frozen=True)
class UploadTerms:
    """What a presigned PUT is bound to, and the headers the uploader must send for it."""

    size: int
    content_type: str
    checksum_sha256: str  # base64 of the raw digest, as S3 takes it
    tags: Mapping[str, str]

    @property
    def tagging(self) -> str:
        return "&".join(f"{k}={v}" for k, v in self.tags.items())

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Length": str(self.size),
            "Content-Type": self.content_type,
            "x-amz-checksum-sha256": self.checksum_sha256,
            "x-amz-tagging": self.tagging,
        }


class Table(Protocol):
    """One table of items keyed by (``pk``, ``sk``); reads are strongly consistent."""

    def get(self, key: Key) -> Item | None: ...

    def put(self, item: Mapping[str, Any], condition: Condition | None = None) -> None: ...

    def change(
        self,
        key: Key,
        update: Update,
        condition: Condition | None = None,
        returns: ReturnValues = "NONE",
    ) -> Item | None: ...

    def delete(self, key: Key, condition: Condition | None = None) -> Item | None:
        """The deleted item, or None when there was none."""
        ...

    def transact(self, actions: Sequence[Action]) -> None:
        """All actions or none (at most ``TRANSACTION_MAX``, no two on one item)."""
        ...

    def put_many(self, items: Sequence[Mapping[str, Any]], ordered: bool = False) -> None:
        """Unconditional puts, in batches; ``ordered`` lands each batch before the next."""
        ...

    def get_many(self, keys: Iterable[Key], attributes: Sequence[str] = ()) -> list[Item]:
        """Every existing item among ``keys``, in no particular order, with only
        ``attributes`` (and the key) when given."""
        ...

    def query(
        self, pk: str, sk_prefix: str, after: str | None = None, last: int | None = None
    ) -> list[Item]:
        """Every item of partition ``pk`` whose sort key starts with ``sk_prefix`` (every item
        of the partition when it is empty; and sorts after ``after``, when given), in sort key
        order; only the ``last`` of them, when given (read from the end, not all read and cut)."""
        ...

    def delete_many(self, keys: Sequence[Key], ordered: bool = False) -> None:
        """Unconditional deletes, in batches; ``ordered`` lands each batch before the next."""
        ...

    def scan_keys(self, pk_prefixes: Sequence[str]) -> Iterator[Key]:
        """The key of every item whose partition key starts with one of ``pk_prefixes``: a read
        of the whole table, for sweeps that no key leads to, never for a request."""
        ...


class Bucket(Protocol):
    """One bucket of blobs; URLs are short-lived and carry their own authorisation."""

    def get(self, key: str) -> bytes | None: ...

    def open(self, key: str) -> IO[bytes] | None: ...

    def read_range(self, key: str, offset: int, length: int) -> bytes: ...

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None: ...

    def exists(self, key: str) -> bool: ...

    def tag(self, key: str, tags: Mapping[str, str]) -> bool:
        """Replace the object's tags; False when there is no such object."""
        ...

    def copy_range(self, source: str, offset: int, length: int, target: str) -> None:
        """Copy bytes of one object into another, inside the bucket."""
        ...

    def delete_prefix(self, prefix: str) -> list[tuple[str, str]]:
        """Delete every object under ``prefix``; the (key, reason) of those it could not."""
        ...

    def files(self, prefix: str) -> Iterator[StoredFile]:
        """Every object under ``prefix``, in key order."""
        ...

    def delete_keys(self, keys: Iterable[str]) -> list[tuple[str, str]]:
        """Delete these objects (a missing one is no error); the (key, reason) of those it
        could not."""
        ...

    def upload_url(self, key: str, expires_in: int, terms: UploadTerms | None = None) -> str:
        """A PUT URL; with ``terms``, S3 accepts only a PUT that sends exactly those."""
        ...

    def download_url(self, key: str, expires_in: int) -> str: ...
