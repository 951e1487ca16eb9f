"""``build_mpack`` with ``out`` writes the pack it builds, byte for byte, holding one object at a
time instead of them all."""

from __future__ import annotations

import io
import os
import tracemalloc
from pathlib import Path

from muse_cloud_cli.workload import Workload, generate_history
from muse_core.mpack import build_mpack, encode_mpack

BLOB = 256 * 1024


def test_the_streamed_pack_is_the_built_pack(tmp_path: Path) -> None:
    ids = generate_history(tmp_path, Workload(commits=12, files=6, changed_per_commit=2))
    for tips, have in ((["main"], []), ({"main": ids[-1]}, [ids[4]]), ([ids[7]], [ids[2]])):
        out = io.BytesIO()
        summary = build_mpack(tmp_path, tips, have, out=out)
        built = build_mpack(tmp_path, tips, have)
        assert out.getvalue() == encode_mpack(built)
        objects = [{"object_id": o["object_id"]} for o in built["objects"]]
        assert summary == {**built, "objects": objects}


def test_writing_holds_one_object_at_a_time(tmp_path: Path) -> None:
    workload = Workload(commits=30, files=10, changed_per_commit=2, blob_bytes=BLOB)
    generate_history(tmp_path, workload)
    with open(os.devnull, "wb") as nowhere:
        tracemalloc.start()
        try:
            summary = build_mpack(tmp_path, ["main"], out=nowhere)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    objects = len(summary["objects"])
    assert objects * BLOB > 20 * 3 * BLOB
    # An object read, and packed once more; the rest is commits, deltas and manifests.
    assert peak < 3 * BLOB + 1024 * 1024
