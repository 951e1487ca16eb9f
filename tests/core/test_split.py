"""A push cut into packs (``muse_core.split``): each pack verifies against a receiver holding
the packs before it, within limits no larger than the client's estimate of it, and the
estimate of the bytes hashed is the verifier's own count."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from muse_cloud_cli.workload import Workload, generate_history
from muse_core.limits import Limits
from muse_core.split import PackCost, PlannedPack, split_push, write_planned
from muse_core.verify import verify_mpack

from .conftest import MemoryReceiver, commit_tree, refuse


def within(cost: PackCost) -> Limits:
    """Limits that allow exactly what ``cost`` estimates."""
    return Limits(
        max_pack_bytes=cost.pack_bytes,
        max_objects=cost.objects,
        max_commits=cost.commits,
        max_snapshots=cost.snapshots,
        max_rebuilt_entries=cost.rebuilt_entries,
        max_hashed_manifest_bytes=cost.hashed_bytes,
    )


def written(root: Path, planned: PlannedPack) -> bytes:
    out = io.BytesIO()
    write_planned(root, "main", planned, out)
    return out.getvalue()


@pytest.fixture
def merged_history(tmp_path: Path) -> tuple[Path, str]:
    """40 commits of 30 files, and a side branch of 3 commits (from the 10th) merged last."""
    root = tmp_path / "repo"
    ids = generate_history(root, Workload(commits=40, files=30, changed_per_commit=3))
    side = ids[9]
    files = {f"side/{n}.txt": f"side {n}\n".encode() for n in range(20)}
    for n in range(3):
        files[f"side/{n}.txt"] = f"changed {n}\n".encode()
        parents = (side,)
        side = commit_tree(
            root, files, message=f"side {n}", committed_at=f"2026-03-17T00:0{n}:00+00:00",
            parents=parents,
        ).commit_id  # fmt: skip
    merge = commit_tree(
        root,
        {**files, "merged.txt": b"both"},
        message="merge",
        committed_at="2026-03-18T00:00:00+00:00",
        parents=(ids[-1], side),
    )
    return root, merge.commit_id


def test_each_pack_verifies_after_the_ones_before_within_its_estimate(
    merged_history: tuple[Path, str],
) -> None:
    root, head = merged_history
    budget = Limits(max_commits=12, max_objects=60)
    packs = split_push(root, head, [], budget)
    assert len(packs) > 2
    receiver = MemoryReceiver()
    for planned in packs:
        if len(planned.commits) > 1:
            assert planned.cost.exceeded(budget) is None
        data = written(root, planned)
        assert len(data) <= planned.cost.pack_bytes
        verified = verify_mpack(data, receiver, limits=within(planned.cost))
        # The bytes hashed are counted as the verifier counts them: one fewer is refused.
        fewer = replace(
            within(planned.cost), max_hashed_manifest_bytes=planned.cost.hashed_bytes - 1
        )
        refuse(data, "limit_exceeded", receiver=receiver, limits=fewer)
        receiver.absorb(verified, data)
    assert head in receiver.commits
    assert sum(len(p.commits) for p in packs) == 44
    # The side branch came with its merge, in the last pack.
    assert packs[-1].head == head
    assert {c.message for c in packs[-1].commits} >= {"side 0", "side 1", "side 2", "merge"}


def test_what_the_receiver_holds_is_left_out(merged_history: tuple[Path, str]) -> None:
    root, head = merged_history
    first, *rest = split_push(root, head, [], Limits(max_commits=12))
    again = split_push(root, head, [first.head], Limits(max_commits=12))
    assert [p.head for p in again] == [p.head for p in rest]
    assert split_push(root, head, [head]) == [PlannedPack(head)]
