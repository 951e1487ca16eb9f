"""Benchmark of the muse_core layer on the protocol's seed workload.

Generates the seed history (1,031 commits, 700 files, 5 changed per commit, 512-byte blobs) in a
temporary directory, then times building its delta mpack, encoding it, verifying it, and, as the
floor verification cannot beat, merely hashing every snapshot's full manifest once. Then, on the
seed's shape with larger blobs (a pack of about 80 MiB), the peak memory (tracemalloc) of
building and encoding the pack in memory beside writing it as it is built (``build_mpack``'s
``out``), one object at a time, as ``muse-cloud push`` does.

Run: ``python benchmarks/bench_core.py``. Prints a table of figures against the targets and exits
with status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgpack

from muse_cloud_cli.workload import SEED, Workload, generate_history
from muse_core.delta import apply_delta
from muse_core.mpack import build_mpack, encode_mpack
from muse_core.snapshot import compute_snapshot_id
from muse_core.verify import EmptyReceiver, VerifiedMpack, verify_mpack

T = TypeVar("T")

BUILD_TARGET_S = 1.0
VERIFY_TARGET_S = 0.5
VERIFY_OVER_HASH_TARGET = 3.0
SNAPSHOT_SHARE_TARGET = 0.05
FULL_MANIFEST_ENTRY_BYTES = 80
# The memory rows' blobs: the seed's shape then packs to about 80 MiB.
MEMORY_BLOB_BYTES = 14 * 1024
# Writing holds the commits, the snapshot deltas, a manifest or two and one object: a small
# share of a pack whose bytes are mostly objects.
STREAMED_SHARE_TARGET = 0.25


@dataclass(frozen=True)
class Row:
    name: str
    value: str
    target: str
    passed: bool | None  # None: a figure with no target


def best_of(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    """The fastest of ``repeat`` runs of ``fn`` (wall clock seconds) and the last result."""
    best = float("inf")
    result: T | None = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, result


def rebuild_manifests(snapshots: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Every snapshot's full manifest, rebuilt from the pack's deltas (not timed)."""
    by_id: dict[str, dict[str, str]] = {}
    manifests: list[dict[str, str]] = []
    for snap in snapshots:
        base_id = snap["parent_snapshot_id"]
        base = by_id[base_id] if base_id is not None else {}
        manifest = apply_delta(base, snap["delta_upsert"], snap["delta_remove"])
        by_id[snap["snapshot_id"]] = manifest
        manifests.append(manifest)
    return manifests


def hash_all(manifests: list[dict[str, str]]) -> list[str]:
    return [compute_snapshot_id(m) for m in manifests]


def seconds(value: float) -> str:
    return f"{value * 1000:9.1f} ms"


def run(workload: Workload, repeat: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="muse-bench-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        generate_history(root, workload)
        generate_s = time.perf_counter() - start

        build_s, pack = best_of(repeat, lambda: build_mpack(root, ["main"]))
    encode_s, data = best_of(1, lambda: encode_mpack(pack))
    verify_s, verified = best_of(repeat, lambda: verify_mpack(data, EmptyReceiver()))
    check(workload, pack, verified)

    snapshots: list[dict[str, Any]] = pack["snapshots"]
    manifests = rebuild_manifests(snapshots)
    hash_s, ids = best_of(repeat, lambda: hash_all(manifests))
    if ids != [s["snapshot_id"] for s in snapshots]:
        raise SystemExit("rebuilt manifests do not hash to their snapshot ids")

    snapshot_bytes = len(msgpack.packb(snapshots, use_bin_type=True))
    full_estimate = workload.commits * workload.files * FULL_MANIFEST_ENTRY_BYTES
    share = snapshot_bytes / full_estimate
    ratio = verify_s / hash_s
    counts = f"{len(verified.commits)}/{len(verified.snapshots)}/{len(verified.objects)}"
    return [
        Row("generate workload", seconds(generate_s), "", None),
        Row("commits/snapshots/objects", f"{counts:>12}", "", None),
        Row(f"build_mpack (best of {repeat})", seconds(build_s), f"<= {BUILD_TARGET_S:.1f} s",
            build_s <= BUILD_TARGET_S),
        Row("encode_mpack", seconds(encode_s), "", None),
        Row(f"verify_mpack (best of {repeat})", seconds(verify_s), f"<= {VERIFY_TARGET_S:.1f} s",
            verify_s <= VERIFY_TARGET_S),
        Row(f"hash every manifest (best of {repeat})", seconds(hash_s), "", None),
        Row("verify / hash-only", f"{ratio:10.2f} x", f"<= {VERIFY_OVER_HASH_TARGET:.0f} x",
            ratio <= VERIFY_OVER_HASH_TARGET),
        Row("pack size", f"{len(data) / 2**20:9.2f} MiB", "", None),
        Row("packed snapshot list", f"{snapshot_bytes / 2**10:8.1f} KiB", "", None),
        Row("full-manifest estimate", f"{full_estimate / 2**20:9.2f} MiB", "", None),
        Row("snapshot list share", f"{share * 100:10.2f} %",
            f"< {SNAPSHOT_SHARE_TARGET * 100:.0f} %", share < SNAPSHOT_SHARE_TARGET),
    ]  # fmt: skip


def traced_peak(fn: Callable[[], T]) -> tuple[int, T]:
    """The most memory Python held at once while ``fn`` ran (tracemalloc), and its result."""
    tracemalloc.start()
    try:
        result = fn()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def memory_rows(workload: Workload) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="muse-bench-") as tmp:
        root = Path(tmp)
        generate_history(root, workload)
        built_peak, data = traced_peak(lambda: encode_mpack(build_mpack(root, ["main"])))
        with open(os.devnull, "wb") as nowhere:
            written_peak, _ = traced_peak(lambda: build_mpack(root, ["main"], out=nowhere))
    share = written_peak / len(data)
    return [
        Row(f"pack of {workload.blob_bytes // 1024} KiB blobs", f"{len(data) / 2**20:9.1f} MiB",
            "", None),
        Row("peak memory: build_mpack + encode_mpack", f"{built_peak / 2**20:9.1f} MiB", "",
            None),
        Row("peak memory: build_mpack to a file (push)", f"{written_peak / 2**20:9.1f} MiB",
            f"<= {STREAMED_SHARE_TARGET * 100:.0f} % of the pack", share <= STREAMED_SHARE_TARGET),
    ]  # fmt: skip


def check(workload: Workload, pack: dict[str, Any], verified: VerifiedMpack) -> None:
    """The benchmark measures a correct pack or nothing."""
    expected_objects = workload.files + (workload.commits - 1) * workload.changed_per_commit
    if (len(verified.commits), len(verified.snapshots), len(verified.objects)) != (
        workload.commits,
        workload.commits,
        expected_objects,
    ):
        raise SystemExit("the seed pack does not carry the expected history")
    if any("manifest" in s for s in pack["snapshots"]):
        raise SystemExit("a snapshot carries a full manifest")


def render(rows: list[Row]) -> str:
    width = max(len(r.name) for r in rows)
    lines = [f"{'figure':<{width}}  {'value':>14}  {'target':<10}  result", "-" * (width + 36)]
    for row in rows:
        result = "" if row.passed is None else ("PASS" if row.passed else "MISS")
        lines.append(f"{row.name:<{width}}  {row.value:>14}  {row.target:<10}  {result}".rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (best is kept)")
    args = parser.parse_args(argv)
    workload = SEED
    print(
        f"seed workload: {workload.commits} commits, {workload.files} files, "
        f"{workload.changed_per_commit} changed per commit, {workload.blob_bytes}-byte blobs"
    )
    rows = run(workload, max(1, args.repeat))
    rows += memory_rows(Workload(blob_bytes=MEMORY_BLOB_BYTES))
    print(render(rows))
    missed = [r.name for r in rows if r.passed is False]
    print("all targets met" if not missed else f"missed: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
