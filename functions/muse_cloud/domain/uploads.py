"""How a pack goes up to object storage: in one PUT, or in parts (S3 multipart upload), and
S3's own bounds on both."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

MIB = 1024 * 1024
GIB = 1024 * MIB
TIB = 1024 * GIB
# S3's limits: https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
MAX_SINGLE_PUT_BYTES = 5 * GIB
MAX_OBJECT_BYTES = 5 * TIB
MAX_PARTS = 10_000
MIN_PART_BYTES = 5 * MIB  # every part but the last
MAX_PART_BYTES = 5 * GIB


@dataclass(frozen=True)
class PartLayout:
    """How a pack of ``size`` bytes is cut into parts: every part ``part_size`` bytes, the last
    one what is left. Derived from the size alone, so a resumed upload cuts the same parts."""

    size: int
    part_size: int

    @classmethod
    def for_size(cls, size: int, preferred_part_bytes: int) -> PartLayout:
        # Parts grow (in whole MiB) when the preferred size would need more than S3's 10,000.
        fewest = -(-size // MAX_PARTS)
        part_size = max(preferred_part_bytes, MIN_PART_BYTES, -(-fewest // MIB) * MIB)
        return cls(size, min(part_size, MAX_PART_BYTES))

    @property
    def count(self) -> int:
        return -(-self.size // self.part_size)

    def missing(self, held: Collection[int]) -> list[int]:
        """The part numbers not in ``held``, in order."""
        return [n for n in range(1, self.count + 1) if n not in held]

    def length(self, part_number: int) -> int:
        """The bytes of part ``part_number`` (1-based, as S3 numbers them)."""
        start = (part_number - 1) * self.part_size
        return min(self.part_size, self.size - start)


@dataclass(frozen=True)
class UploadedPart:
    """A part object storage holds for an upload in progress."""

    part_number: int
    size: int
    etag: str
