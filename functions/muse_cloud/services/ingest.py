"""Ingestion: verify an uploaded pack and make it part of the repository, or refuse it whole.

Both triggers (the S3 event through SQS, and ``push/unpack-mpack``) call ``IngestService.ingest``.
Every write before the ref move is an idempotent put of content-addressed data, the refs move
last in one compare-and-swap transaction, and the push record ends in a final state exactly once,
so redelivery, retries and crashes between any two writes converge on one result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.events import PushCounts
from muse_cloud.domain.pushes import (
    FINAL_STATES,
    IngestResult,
    PushRecord,
    PushRequest,
    RefMove,
    Refusal,
    Timings,
)
from muse_cloud.domain.repos import Repo
from muse_cloud.services.ref_changes import Guard, RefChanges
from muse_cloud.services.ref_plan import moving, plan_ref_updates, refuse_nested_names
from muse_cloud.storage.backend import Item
from muse_cloud.storage.commits import StoredCommit, ancestor_hints
from muse_cloud.storage.layout import UploadKey
from muse_cloud.storage.pack_index import ObjectLocation
from muse_cloud.storage.pushes import LeaseLost
from muse_cloud.storage.receiver import HeldCommits, RepoReceiver
from muse_cloud.storage.refs import RefUpdate
from muse_cloud.storage.requests import RequestTally, counting
from muse_cloud.storage.snapshots import CHAIN_LIMIT, DELTA_ENTRY_LIMIT, SnapshotStore
from muse_cloud.storage.stores import Stores
from muse_core.ancestry import generation_numbers
from muse_core.collection import full_collections_deferred
from muse_core.errors import MuseError
from muse_core.ids import require_id
from muse_core.limits import DEFAULT_LIMITS, Limits
from muse_core.paths import validate_branch_name
from muse_core.snapshot import SortedManifest
from muse_core.verify import VerifiedMpack, verify_mpack

# Twice the queue's maxReceiveCount: a dead-lettered push can be redriven once before a pack that
# always kills its run (a timeout, memory) is recorded as failed instead of retried forever.
MAX_ATTEMPTS = 10
# A pack or repository that is not there (yet): the run is no attempt, and the push stays open.
NOTHING_TO_INGEST = ("pack_not_found", "repo_not_found")


class IngestBusy(Exception):
    """Another run holds this push's lease; the caller should retry in ``retry_in`` seconds."""

    def __init__(self, push_id: str, retry_in: int = 1) -> None:
        super().__init__(push_id)
        self.retry_in = retry_in


def _nothing(_: PushRecord) -> None:
    return None


def _nothing_stored(_: Repo, __: UploadKey, ___: int) -> None:
    return None


@dataclass
class IngestService:
    stores: Stores
    limits: Limits = DEFAULT_LIMITS
    lease_seconds: int = 900
    # Told of every outcome recorded (once per push run that ends it): metrics, say.
    on_finish: Callable[[PushRecord], None] = _nothing
    # Told (repository, pack, bytes) by every run that writes a pack, reruns included, so it
    # must be idempotent: the quotas count the bytes stored.
    on_stored: Callable[[Repo, UploadKey, int], None] = _nothing_stored

    def ingest(self, upload: UploadKey, request: PushRequest | None = None) -> PushRecord:
        """Run (or report) the ingestion of one uploaded pack; final results are recorded once.

        Raises ``IngestBusy`` while another run holds the lease, ``pack_not_found`` when
        nothing was uploaded under the key, ``push_mismatch`` when the pack was already
        ingested for another branch or head than ``request`` asks, and lets transient errors
        through for a retry.
        """
        wanted = request if request and request.branch else None
        pushes = self.stores.pushes
        existing = pushes.get(upload.repo_id, upload.mpack_hex)
        if existing is None or existing.state not in FINAL_STATES:
            claimed = pushes.claim(
                upload.repo_id, upload.mpack_hex, upload.mpack_key, self.lease_seconds, wanted
            )
            if claimed is not None:
                return self._run(upload, claimed)
            existing = pushes.get(upload.repo_id, upload.mpack_hex)
            if existing is None or existing.state not in FINAL_STATES:
                lease_until = existing.lease_until if existing else None
                raise IngestBusy(upload.mpack_hex, max(1, int((lease_until or 0) - time.time())))
        return self._recorded(upload, existing, wanted)

    def _recorded(
        self, upload: UploadKey, record: PushRecord, wanted: PushRequest | None
    ) -> PushRecord:
        if record.state == "ok" and wanted and record.targets_other(wanted.branch, wanted.head):
            applied = sorted(record.result.applied()) if record.result else []
            raise ServiceError(
                "push_mismatch",
                f"this pack was already ingested for {applied}, not for {wanted.branch!r} "
                f"at {wanted.head}; presign it again for that target",
                record.push_id,
            )
        if self.stores.pack_index.holds(upload.repo_id, upload.mpack_hex):
            # A second upload of the same bytes re-tags the pack for expiry: it is home to
            # indexed objects, so tag it back.
            self.stores.packs.mark_ingested(upload.s3_key)
        return record

    def _run(self, upload: UploadKey, record: PushRecord) -> PushRecord:
        if record.attempts >= MAX_ATTEMPTS:
            exhausted = Refusal(
                "ingest_attempts_exhausted",
                f"ingestion failed {MAX_ATTEMPTS} times; presign the push again to retry",
                record.push_id,
            )
            return self._finish(record, "failed", None, exhausted)
        try:
            result = self._ingest(upload, record)
        except ServiceError as error:
            if error.code in NOTHING_TO_INGEST:
                # The pack may still be uploaded: a call before the upload never uses up the push.
                self.stores.pushes.release(record, attempted=False)
                raise
            return self._finish(
                record, "failed", None, Refusal(error.code, error.message, error.item)
            )
        except BaseException:
            self.stores.pushes.release(record)
            raise
        return self._finish(record, "ok", result)

    def _finish(
        self,
        record: PushRecord,
        state: Literal["ok", "failed"],
        result: IngestResult | None,
        refusal: Refusal | None = None,
    ) -> PushRecord:
        try:
            finished = self.stores.pushes.finish(record, state, result, refusal)
        except LeaseLost:
            # This run outlived its lease and another took over: that one's outcome counts.
            raise IngestBusy(record.push_id) from None
        except BaseException:
            # The outcome was not recorded: give the lease back so a retry records it at once.
            self.stores.pushes.release(record)
            raise
        self.on_finish(finished)
        return finished

    def _ingest(self, upload: UploadKey, record: PushRecord) -> IngestResult:
        """Verify, plan, write, move the refs: the algorithm, with its clock and tally."""
        clock = _Clock()
        with counting() as tally, full_collections_deferred():
            # Read first, so a push to a repository deleted meanwhile stops before verifying.
            guard = RefChanges(self.stores).guard(upload.repo_id)
            repo = guard.repo
            planner = _CheckpointPlanner(repo.repo_id, self.stores)
            held = HeldCommits(repo.repo_id, self.stores.commits)
            pack = self._verify(upload, planner, held)
            clock.lap("verify")
            lineage = _Lineage.of(pack, held)
            # A first run refuses a push whose refs cannot move before writing anything; a rerun
            # of a run that began writing (its pack is indexed, the first write) completes the
            # writes first, so whatever can be read can always be rebuilt.
            resuming = self.stores.pack_index.holds(repo.repo_id, upload.mpack_hex)
            plan = None if resuming else self._plan(guard, record, pack, lineage)
            self._write(upload, pack, planner, lineage)
            self.on_stored(repo, upload, pack.size)
            clock.lap("write")
            plan = plan or self._plan(guard, record, pack, lineage)
            clock.lap("plan")
            counts = PushCounts(
                len(pack.commits), len(pack.snapshots), len(pack.objects), pack.size
            )
            moves = self._move_refs(repo.repo_id, record, plan, counts)
            self._carry_default_branch(repo, moves, plan.heads)
            clock.lap("refs")
        return _result(pack, moves, tally, clock.timings())

    def _verify(
        self, upload: UploadKey, planner: _CheckpointPlanner, held: HeldCommits
    ) -> VerifiedMpack:
        stream = self.stores.packs.open(upload.s3_key)
        if stream is None:
            raise ServiceError(
                "pack_not_found", "nothing uploaded under that key", upload.mpack_key
            )
        stores = self.stores
        receiver = RepoReceiver(
            upload.repo_id, held, stores.snapshots, stores.pack_index, planner.items
        )
        try:
            return verify_mpack(
                stream,
                receiver,
                expected_key=upload.mpack_key,
                limits=self.limits,
                keep_manifests=planner.keep_manifests,
            )
        except MuseError as error:
            raise ServiceError.from_core(error) from None
        finally:
            stream.close()

    def _write(
        self,
        upload: UploadKey,
        pack: VerifiedMpack,
        planner: _CheckpointPlanner,
        lineage: _Lineage,
    ) -> None:
        """Objects, then snapshots (bases first), then commits (parents first)."""
        repo_id = upload.repo_id
        # Before anything points into the pack: from here on it is home to indexed objects,
        # so the lifecycle rule that expires abandoned uploads must leave it alone.
        self.stores.packs.mark_ingested(upload.s3_key)
        locations = [
            ObjectLocation(o.object_id, upload.s3_key, o.offset, o.length) for o in pack.objects
        ]
        self.stores.pack_index.record(repo_id, upload.s3_key, upload.mpack_hex, locations)
        new_snapshots = [s for s in pack.snapshots if s.snapshot_id not in planner.held]
        self.stores.snapshots.put_many(repo_id, new_snapshots, planner.chains)
        for snapshot in new_snapshots:
            if snapshot.snapshot_id == planner.tip and snapshot.manifest is not None:
                sorted_manifest = SortedManifest.of(snapshot.manifest)
                self.stores.snapshots.remember(repo_id, snapshot.snapshot_id, sorted_manifest)
        self.stores.commits.put_many(
            repo_id,
            (
                StoredCommit(c, lineage.generations[c.commit_id], lineage.ancestors[c.commit_id])
                for c in pack.commits
            ),
        )

    def _plan(
        self, guard: Guard, record: PushRecord, pack: VerifiedMpack, lineage: _Lineage
    ) -> _Planned:
        repo = guard.repo
        repo_id = repo.repo_id
        targets = _targets(record, pack)
        missing = [h for h in targets.values() if h not in lineage.lookup([h])]
        if missing:
            raise ServiceError(
                "missing_commit", "the new head is neither in the pack nor held", missing[0]
            )
        heads = self._heads(repo, targets)
        updates = plan_ref_updates(
            targets, heads, dict(record.plan or {}), record.force, lineage.lookup
        )
        # Refused before anything is written when the rules forbid it now; the move itself is
        # judged again, in its transaction.
        RefChanges(self.stores).judge_moves(guard, moving(updates), record.pusher)
        self.stores.pushes.note_plan(
            repo_id, record.push_id, {u.branch: u.expected for u in updates}
        )
        return _Planned(updates, heads, guard)

    def _heads(self, repo: Repo, targets: Mapping[str, str]) -> dict[str, str]:
        """The heads a plan needs: the targets' and the default branch's, read by key when
        every target exists (no existing branch is nested with another, as every creation was
        refused otherwise); every head when one is new, to refuse a name nested with any."""
        heads = self.stores.refs.heads_of(repo.repo_id, {*targets, repo.default_branch})
        if targets.keys() <= heads.keys():
            return heads
        return self.stores.refs.heads(repo.repo_id)

    def _move_refs(
        self, repo_id: str, record: PushRecord, plan: _Planned, counts: PushCounts
    ) -> list[RefMove]:
        moves = moving(plan.updates)
        changes = RefChanges(self.stores)
        if moves and not changes.move(
            repo_id, moves, record.push_id, record.pusher, counts, plan.guard
        ):
            heads = self.stores.refs.heads(repo_id)
            if any(heads.get(u.branch) != u.new for u in moves):
                for update in moves:
                    if update.expected is None:
                        # Another push created a branch nested with this new one first.
                        refuse_nested_names(update.branch, heads)
                raise ServiceError(
                    "ref_conflict",
                    "another push moved the branch first; fetch and push again",
                    moves[0].branch,
                )
        return [RefMove(u.branch, u.new, u.expected) for u in plan.updates]

    def _carry_default_branch(
        self, repo: Repo, moves: list[RefMove], heads: Mapping[str, str]
    ) -> None:
        """The first branch pushed becomes the default while the default has no commits: a
        client's only branch (say ``trunk``) is what its clones check out. A default branch
        among the heads read for the plan still has commits (it cannot be deleted)."""
        branches = [m.branch for m in moves]
        if not branches or repo.default_branch in branches or repo.default_branch in heads:
            return
        if repo.default_branch not in self.stores.refs.heads(repo.repo_id):
            self.stores.repos.adopt_default_branch(repo, branches[0])


def _targets(record: PushRecord, pack: VerifiedMpack) -> dict[str, str]:
    """The branch and head the push record asks for, or every head the pack names."""
    if not record.branch:
        return dict(pack.branch_heads)
    try:
        branch = validate_branch_name(record.branch)
        head = record.head or pack.branch_heads.get(branch)
        if head is None:
            raise ServiceError(
                "missing_commit", "no head given for the branch and none in the pack", branch
            )
        require_id(head, "head")
    except MuseError as error:
        raise ServiceError.from_core(error) from None
    return {branch: head}


def _result(
    pack: VerifiedMpack, moves: list[RefMove], tally: RequestTally, timings: Timings
) -> IngestResult:
    # Counted from the pack, so a rerun after a crash (which finds some snapshots already
    # written) reports the same result as an uninterrupted run.
    return IngestResult(
        commits_written=len(pack.commits),
        snapshots_written=len(pack.snapshots),
        objects_written=len(pack.objects),
        bytes=pack.size,
        updates=tuple(moves),
        dynamodb_requests=tally.dynamodb,
        s3_requests=tally.s3,
        timings=timings,
    )


@dataclass(frozen=True)
class _Planned:
    """The ref updates planned, the heads they were planned from, and the guard they were
    judged under."""

    updates: list[RefUpdate]
    heads: Mapping[str, str]
    guard: Guard


@dataclass
class _Clock:
    started: float = field(default_factory=time.perf_counter)
    laps: dict[str, int] = field(default_factory=dict)

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[f"{name}_ms"] = round((now - self.started) * 1000) - sum(self.laps.values())

    def timings(self) -> Timings:
        return Timings(**self.laps, total_ms=sum(self.laps.values()))


@dataclass(frozen=True)
class _Lineage:
    """Where each commit of the pack sits in the history: its generation number and its next
    first-parent ancestors, continuing what the repository holds."""

    held: HeldCommits
    in_pack: Mapping[str, tuple[tuple[str, ...], int]]
    generations: Mapping[str, int]
    ancestors: Mapping[str, tuple[str, ...]]

    @classmethod
    def of(cls, pack: VerifiedMpack, held: HeldCommits) -> _Lineage:
        graph = {c.commit_id: c.parent_ids for c in pack.commits}
        generations = generation_numbers(graph, held.generations)
        hints: dict[str, tuple[str, ...]] = {}
        outside = {p for c in pack.commits if (p := c.parent_commit_id) and p not in graph}
        hints.update((i, h.ancestors) for i, h in held.lineages(outside).items())
        for commit in pack.commits:
            hints[commit.commit_id] = ancestor_hints(commit.parent_commit_id, hints)
        in_pack = {cid: (parents, generations[cid]) for cid, parents in graph.items()}
        return cls(held, in_pack, generations, hints)

    def lookup(self, ids: Collection[str]) -> dict[str, tuple[tuple[str, ...], int]]:
        """Parents and generation of each commit, from the pack or the store."""
        found = {i: self.in_pack[i] for i in ids if i in self.in_pack}
        rest = [i for i in ids if i not in self.in_pack]
        if rest:
            found.update(self.held.generations(rest))
        return found


@dataclass
class _CheckpointPlanner:
    """Decides, before verification rebuilds anything, which snapshots become checkpoints.

    A snapshot the repository already holds keeps its stored representation, so its chain is
    the stored one, whatever base the pack happens to encode it against.
    """

    repo_id: str
    stores: Stores
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)
    # The stored items of the pack's snapshots and delta bases: a base held is rebuilt from
    # its item, not read again.
    items: dict[str, Item] = field(default_factory=dict)
    # The pack's last new snapshot, whose manifest is kept: the next push of the branch is a
    # delta on it.
    tip: str | None = None

    def keep_manifests(self, planned: list[tuple[str, str | None, int]]) -> set[str]:
        ids = {sid for sid, _, _ in planned} | {base for _, base, _ in planned if base}
        self.items.update(self.stores.snapshots.items(self.repo_id, ids) if ids else {})
        stored = {sid: SnapshotStore.chain_of(item) for sid, item in self.items.items()}
        self.held = {sid for sid, _, _ in planned if sid in stored}
        known = dict(stored)
        keep: set[str] = set()
        if planned and planned[-1][0] not in stored:
            self.tip = planned[-1][0]
            keep.add(self.tip)
        for sid, base_id, delta_size in planned:
            if sid in known:
                continue
            base_chain = known.get(base_id) if base_id is not None else None
            if (
                base_id is None
                or base_chain is None
                or delta_size > DELTA_ENTRY_LIMIT
                or len(base_chain) + 1 > CHAIN_LIMIT
            ):
                chain: tuple[str, ...] = ()
                keep.add(sid)
            else:
                chain = (base_id, *base_chain)
            known[sid] = self.chains[sid] = chain
        return keep
