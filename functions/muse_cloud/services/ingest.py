"""Ingestion: verify an uploaded pack and make it part of the repository, or refuse it whole.

Both triggers (the S3 event through SQS, and ``push/unpack-mpack``) call ``IngestService.ingest``.
Every write before the ref move is an idempotent put of content-addressed data, the refs move
last in one compare-and-swap transaction, and the push record ends in a final state exactly once,
so redelivery, retries and crashes between any two writes converge on one result.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from muse_cloud.errors import ServiceError
from muse_cloud.storage.commits import ANCESTOR_HINTS, StoredCommit
from muse_cloud.storage.dynamo import TRANSACTION_MAX
from muse_cloud.storage.objects import ObjectLocation
from muse_cloud.storage.packs import PackStore, UploadKey
from muse_cloud.storage.pushes import FINAL_STATES, LeaseLost, PushRecord, PushStore
from muse_cloud.storage.receiver import RepoReceiver, RepoStores
from muse_cloud.storage.refs import RefStore, RefUpdate, transaction_size
from muse_cloud.storage.repos import Repo, RepoStore
from muse_cloud.storage.snapshots import CHAIN_LIMIT, DELTA_ENTRY_LIMIT
from muse_core.ancestry import generation_numbers, is_ancestor
from muse_core.errors import MuseError
from muse_core.limits import DEFAULT_LIMITS, Limits
from muse_core.paths import validate_branch_name
from muse_core.types import require_id
from muse_core.verify import VerifiedMpack, verify_mpack

# Twice the queue's maxReceiveCount: a dead-lettered push can be redriven once before a pack that
# always kills its run (a timeout, memory) is recorded as failed instead of retried forever.
MAX_ATTEMPTS = 10


class IngestBusy(Exception):
    """Another run holds this push's lease; the caller should retry in ``retry_in`` seconds."""

    def __init__(self, push_id: str, retry_in: int = 1) -> None:
        super().__init__(push_id)
        self.retry_in = retry_in


@dataclass(frozen=True)
class PushRequest:
    branch: str | None = None
    head: str | None = None
    force: bool = False


@dataclass
class IngestMetrics:
    commits: int = 0
    snapshots: int = 0
    objects: int = 0
    bytes: int = 0
    dynamodb_requests: int = 0
    s3_requests: int = 0
    timings_ms: dict[str, int] = field(default_factory=dict)


@dataclass
class IngestService:
    repos: RepoStore = field(default_factory=RepoStore)
    refs: RefStore = field(default_factory=RefStore)
    stores: RepoStores = field(default_factory=RepoStores)
    pushes: PushStore = field(default_factory=PushStore)
    packs: PackStore = field(default_factory=PackStore)
    limits: Limits = DEFAULT_LIMITS
    lease_seconds: int = 900

    def ingest(self, upload: UploadKey, request: PushRequest | None = None) -> PushRecord:
        """Run (or report) the ingestion of one uploaded pack; final results are recorded once.

        Raises ``IngestBusy`` while another run holds the lease, ``ServiceError`` 404 when
        nothing was uploaded under the key, 409 when the pack was already ingested for another
        branch or head than ``request`` asks, and lets transient errors through for a retry.
        """
        push_id = upload.mpack_hex
        wanted = (
            (request.branch, request.head, request.force) if request and request.branch else None
        )
        existing = self.pushes.get(upload.repo_id, push_id)
        if existing is None or existing.state not in FINAL_STATES:
            record = self.pushes.claim(
                upload.repo_id, push_id, upload.mpack_key, self.lease_seconds, wanted
            )
            if record is not None:
                return self._run(upload, record)
            existing = self.pushes.get(upload.repo_id, push_id)
            if existing is None or existing.state not in FINAL_STATES:
                lease_until = existing.lease_until if existing else None
                raise IngestBusy(push_id, max(1, int((lease_until or 0) - time.time())))
        return self._recorded(upload, existing, wanted)

    def _recorded(
        self, upload: UploadKey, record: PushRecord, wanted: tuple[str, str | None, bool] | None
    ) -> PushRecord:
        if record.state == "ok" and wanted is not None and record.targets_other(*wanted[:2]):
            applied = sorted(u["branch"] for u in record.result.get("updates", []))
            raise ServiceError(
                409,
                "push_mismatch",
                f"this pack was already ingested for {applied}, not for {wanted[0]!r} "
                f"at {wanted[1]}; presign it again for that target",
                record.push_id,
            )
        if self.stores.pack_index.holds(upload.repo_id, upload.mpack_hex):
            # A second upload of the same bytes re-tags the pack for expiry: it is home to
            # indexed objects, so tag it back.
            self.packs.mark_ingested(upload.s3_key)
        return record

    def _run(self, upload: UploadKey, record: PushRecord) -> PushRecord:
        if record.attempts >= MAX_ATTEMPTS:
            error = ServiceError(
                500,
                "ingest_attempts_exhausted",
                f"ingestion failed {MAX_ATTEMPTS} times; presign the push again to retry",
                record.push_id,
            )
            return self._finish(record, "failed", {}, error)
        try:
            result = self._ingest(upload, record, IngestMetrics())
        except ServiceError as error:
            if error.code in ("pack_not_found", "repo_not_found") and error.status == 404:
                # Nothing to ingest (yet): the pack may still be uploaded, so this counts as no
                # attempt and a call before the upload never uses up the push.
                self.pushes.release(record, attempted=False)
                raise
            return self._finish(record, "failed", {}, error)
        except BaseException:
            self.pushes.release(record)
            raise
        return self._finish(record, "ok", result)

    def _finish(
        self,
        record: PushRecord,
        state: Literal["ok", "failed"],
        result: dict[str, Any],
        error: ServiceError | None = None,
    ) -> PushRecord:
        recorded = {**error.as_dict(), "status": error.status} if error else None
        try:
            return self.pushes.finish(record, state, result, recorded)
        except LeaseLost:
            # This run outlived its lease and another took over: that one's outcome counts.
            raise IngestBusy(record.push_id) from None
        except BaseException:
            # The outcome was not recorded: give the lease back so a retry records it at once.
            self.pushes.release(record)
            raise

    def _ingest(
        self, upload: UploadKey, record: PushRecord, metrics: IngestMetrics
    ) -> dict[str, Any]:
        started = time.perf_counter()
        repo_id = upload.repo_id
        repo = self.repos.get(repo_id)
        if repo is None:
            raise ServiceError(404, "repo_not_found", "repository does not exist", repo_id)
        stream = self.packs.open(upload.s3_key)
        if stream is None:
            raise ServiceError(
                404, "pack_not_found", "nothing uploaded under that key", upload.mpack_key
            )
        metrics.s3_requests += 1
        receiver = RepoReceiver(repo_id, self.stores)
        planner = _CheckpointPlanner(repo_id, self.stores)
        try:
            pack = verify_mpack(
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
        verified_at = time.perf_counter()
        metrics.bytes = pack.size

        generations = self._generations(repo_id, pack)
        ancestors = self._ancestor_hints(repo_id, pack)
        # A first run refuses a push whose refs cannot move before writing anything; a rerun
        # of a run that began writing (its pack is indexed, the first write) completes the
        # writes first, so whatever can be read can always be rebuilt.
        resuming = self.stores.pack_index.holds(repo_id, upload.mpack_hex)
        plan = None if resuming else self._plan_ref_updates(repo_id, record, pack, generations)

        # Before anything points into the pack: from here on it is home to indexed objects,
        # so the lifecycle rule that expires abandoned uploads must leave it alone.
        self.packs.mark_ingested(upload.s3_key)
        metrics.s3_requests += 1
        locations = [
            ObjectLocation(o.object_id, upload.s3_key, o.offset, o.length) for o in pack.objects
        ]
        self.stores.pack_index.record(repo_id, upload.s3_key, upload.mpack_hex, locations)
        dynamo_requests, s3_requests = self.stores.objects.put_many(repo_id, locations)
        metrics.dynamodb_requests += dynamo_requests
        metrics.s3_requests += s3_requests
        new_snapshots = [s for s in pack.snapshots if s.snapshot_id not in planner.held]
        dynamo_requests, s3_requests = self.stores.snapshots.put_many(
            repo_id, new_snapshots, planner.chains
        )
        metrics.dynamodb_requests += dynamo_requests
        metrics.s3_requests += s3_requests
        dynamo_requests, s3_requests = self.stores.commits.put_many(
            repo_id,
            (
                StoredCommit(c, generations[c.commit_id], ancestors[c.commit_id])
                for c in pack.commits
            ),
        )
        metrics.dynamodb_requests += dynamo_requests
        metrics.s3_requests += s3_requests
        written_at = time.perf_counter()

        if plan is None:
            plan = self._plan_ref_updates(repo_id, record, pack, generations)
        planned_at = time.perf_counter()
        updates = self._move_refs(repo_id, record, plan)
        self._carry_default_branch(repo, updates)
        done = time.perf_counter()

        # Counted from the pack, like commits and objects, so that a rerun after a crash (which
        # finds some snapshots already written) reports the same result as an uninterrupted run.
        metrics.commits, metrics.snapshots = len(pack.commits), len(pack.snapshots)
        metrics.objects = len(pack.objects)
        metrics.timings_ms = {
            "verify_ms": _ms(verified_at - started),
            "write_ms": _ms(written_at - verified_at),
            "plan_ms": _ms(planned_at - written_at),
            "refs_ms": _ms(done - planned_at),
            "total_ms": _ms(done - started),
        }
        first = updates[0] if updates else {"branch": None, "head": None, "previous_head": None}
        return {
            "commits_written": metrics.commits,
            "snapshots_written": metrics.snapshots,
            "objects_written": metrics.objects,
            "bytes": metrics.bytes,
            "branch": first["branch"],
            "head": first["head"],
            "previous_head": first["previous_head"],
            "updates": updates,
            "dynamodb_requests": metrics.dynamodb_requests,
            "s3_requests": metrics.s3_requests,
            **metrics.timings_ms,
        }

    def _carry_default_branch(self, repo: Repo, updates: list[dict[str, str | None]]) -> None:
        """The first branch pushed becomes the default while the default has no commits: a
        client's only branch (say ``trunk``) is what its clones check out."""
        branches = [u["branch"] for u in updates if u["branch"]]
        if not branches or repo.default_branch in branches:
            return
        if repo.default_branch not in self.refs.heads(repo.repo_id):
            self.repos.adopt_default_branch(repo, branches[0])

    def _generations(self, repo_id: str, pack: VerifiedMpack) -> dict[str, int]:
        graph = {c.commit_id: c.parent_ids for c in pack.commits}
        return generation_numbers(graph, lambda ids: self.stores.commits.generations(repo_id, ids))

    def _ancestor_hints(self, repo_id: str, pack: VerifiedMpack) -> dict[str, tuple[str, ...]]:
        """Each commit's next first-parent ancestors, continuing the hints of held parents."""
        hints: dict[str, tuple[str, ...]] = {}
        in_pack = {c.commit_id for c in pack.commits}
        outside = {p for c in pack.commits if (p := c.parent_commit_id) and p not in in_pack}
        if outside:
            hints.update(self.stores.commits.ancestor_hints(repo_id, outside))
        for commit in pack.commits:
            parent = commit.parent_commit_id
            chain = (parent, *hints.get(parent, ())) if parent else ()
            hints[commit.commit_id] = chain[:ANCESTOR_HINTS]
        return hints

    def _targets(self, record: PushRecord, pack: VerifiedMpack) -> dict[str, str]:
        if not record.branch:
            return dict(pack.branch_heads)
        try:
            branch = validate_branch_name(record.branch)
            head = record.head or pack.branch_heads.get(branch)
            if head is None:
                raise ServiceError(
                    422,
                    "missing_commit",
                    "no head given for the branch and none in the pack",
                    branch,
                )
            require_id(head, "head")
        except MuseError as error:
            raise ServiceError.from_core(error) from None
        return {branch: head}

    def _plan_ref_updates(
        self,
        repo_id: str,
        record: PushRecord,
        pack: VerifiedMpack,
        generations: Mapping[str, int],
    ) -> list[RefUpdate]:
        targets = self._targets(record, pack)
        in_pack = {c.commit_id: (c.parent_ids, generations[c.commit_id]) for c in pack.commits}

        def lookup(ids: Any) -> dict[str, tuple[tuple[str, ...], int]]:
            found = {i: in_pack[i] for i in ids if i in in_pack}
            rest = [i for i in ids if i not in in_pack]
            if rest:
                found.update(self.stores.commits.generations(repo_id, rest))
            return found

        missing = [h for h in targets.values() if h not in lookup([h])]
        if missing:
            raise ServiceError(
                422, "missing_commit", "the new head is neither in the pack nor held", missing[0]
            )
        heads = self.refs.heads(repo_id)
        previous = dict(record.plan or {})
        updates = []
        for branch, head in sorted(targets.items()):
            current = heads.get(branch)
            if current == head:
                # Already there: a rerun after the refs moved, or a push of nothing new.
                updates.append(RefUpdate(branch, previous.get(branch, current), head, done=True))
                continue
            if branch in previous and current is not None and is_ancestor(head, current, lookup):
                # A rerun whose earlier run moved the ref, which others have moved on from since.
                updates.append(RefUpdate(branch, previous[branch], head, done=True))
                continue
            moved_meanwhile = branch in previous and current != previous[branch]
            if (
                moved_meanwhile
                and record.force
                and current is not None
                and not is_ancestor(current, head, lookup)
            ):
                # A forced rerun after others moved the ref would undo their push.
                raise ServiceError(
                    409,
                    "ref_conflict",
                    f"branch {branch!r} moved while this push was interrupted; push again",
                    branch,
                )
            _refuse_nested_names(branch, heads)
            if current is not None and not record.force and not is_ancestor(current, head, lookup):
                raise ServiceError(
                    409,
                    "non_fast_forward",
                    f"branch {branch!r} is at {current}, which {head} does not descend from; "
                    "fetch and merge, or push with force",
                    branch,
                )
            updates.append(RefUpdate(branch, current, head))
        _refuse_oversized_transaction(_moving(updates))
        self.pushes.note_plan(repo_id, record.push_id, {u.branch: u.expected for u in updates})
        return updates

    def _move_refs(
        self, repo_id: str, record: PushRecord, plan: list[RefUpdate]
    ) -> list[dict[str, str | None]]:
        moving = _moving(plan)
        if moving and not self.refs.compare_and_swap(repo_id, moving, record.push_id):
            heads = self.refs.heads(repo_id)
            if any(heads.get(u.branch) != u.new for u in moving):
                for update in moving:
                    if update.expected is None:
                        # Another push created a branch nested with this new one first.
                        _refuse_nested_names(update.branch, heads)
                raise ServiceError(
                    409,
                    "ref_conflict",
                    "another push moved the branch first; fetch and push again",
                    moving[0].branch,
                )
        return [{"branch": u.branch, "head": u.new, "previous_head": u.expected} for u in plan]


@dataclass
class _CheckpointPlanner:
    """Decides, before verification rebuilds anything, which snapshots become checkpoints.

    A snapshot the repository already holds keeps its stored representation, so its chain is
    the stored one, whatever base the pack happens to encode it against.
    """

    repo_id: str
    stores: RepoStores
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)

    def keep_manifests(self, planned: list[tuple[str, str | None, int]]) -> set[str]:
        ids = {sid for sid, _, _ in planned} | {base for _, base, _ in planned if base}
        stored = self.stores.snapshots.chains(self.repo_id, ids) if ids else {}
        self.held = {sid for sid, _, _ in planned if sid in stored}
        known = dict(stored)
        keep: set[str] = set()
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


def _moving(plan: list[RefUpdate]) -> list[RefUpdate]:
    return [u for u in plan if not u.done and u.expected != u.new]


def _refuse_oversized_transaction(moving: list[RefUpdate]) -> None:
    """Refused before anything is written: the refs of a push move in one transaction."""
    size = transaction_size(moving)
    if size > TRANSACTION_MAX:
        deepest = max(moving, key=lambda u: (u.expected is None, u.branch.count("/")))
        raise ServiceError(
            413,
            "limit_exceeded",
            f"moving these {len(moving)} branches takes {size} conditional writes, more than "
            f"the {TRANSACTION_MAX} of one transaction (a new branch takes one more per "
            "directory of its name): push fewer new branches at once",
            deepest.branch,
        )


def _refuse_nested_names(branch: str, heads: Mapping[str, str]) -> None:
    """``a`` and ``a/b`` cannot both be branches: a client keeps refs as files in directories."""
    for other in heads:
        if other != branch and (other.startswith(branch + "/") or branch.startswith(other + "/")):
            raise ServiceError(
                409,
                "branch_name_conflict",
                f"branch {branch!r} cannot live beside the existing branch {other!r}",
                branch,
            )


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
