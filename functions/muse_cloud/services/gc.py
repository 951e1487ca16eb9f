"""Garbage collection: what no ref can reach any more, uploads never ingested, and every item and
key of a deleted repository.

One pass visits every repository with uploads (``incoming/<repo_id>/``), then the deleted ones.

A live repository is marked from its roots: its branch heads, the commits its tags and releases
name, and what pushes of the grace period touched (the heads a push moved a branch from or to,
every commit of a pack whose push was recorded since). Marking walks commits to their parents,
each commit to its snapshot, each snapshot to its delta chain, and each snapshot to the objects
it names. The packs kept are enough to hold every marked object (a pack whose objects were all
pushed again in other packs goes; the MIDX is rewritten without it, so no lookup stops there).
Every commit and snapshot any pack brought that is not marked is garbage, in the packs that
stay as in those that go: an item left behind could be built on (a push finds it held) after
the objects it needs were deleted. So every item left after a sweep can be rebuilt.

A sweep deletes under the repository's hold (``storage.gc_hold``), once it has read again, with
the hold taken, that the roots and the push records are what it marked from: a push claimed
before the hold is seen (the repository is left for the next pass), one claimed after it waits
for the hold to end. Deletes go in the order that keeps every step safe to stop at: commits
(children first), snapshots (dependants first), the MIDX rewritten without the dead packs and
their PACK items, then the bytes. Files are deleted only when older than the grace period
(uploads, index files no PACK item names, replaced MIDX files, copied objects), except those of
the packs and items deleted in the same sweep.

A deleted repository leaves a tombstone (``RepoStore.delete``). Its partition is one Query; its
commits, snapshots and push records are keyed one partition each, so they are found by one scan
of the table for every tombstone of the pass (a repository's deletion is rare, and a scan finds
what no listing reaches: the record of a push presigned and never uploaded, the items of an
ingestion that raced the deletion). The tombstone goes once the repository is empty and no
ingestion that began before the deletion can still be writing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from muse_cloud.auth.permissions import require_site_admin
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import Caller
from muse_cloud.domain.pushes import PushRecord
from muse_cloud.domain.repos import DeletedRepo, Repo
from muse_cloud.services.access import RepoAccessService
from muse_cloud.storage import keys, layout
from muse_cloud.storage.backend import Item, Key, StoredFile
from muse_cloud.storage.commits import StoredCommit
from muse_cloud.storage.gc_hold import Hold
from muse_cloud.storage.layout import UploadKey
from muse_cloud.storage.pack_index import StoredPacks
from muse_cloud.storage.pack_records import PackRecords, read_pack_records
from muse_cloud.storage.requests import counting
from muse_cloud.storage.stores import Stores

# UnpackFunction's timeout: an ingestion run that began before a repository was deleted has
# stopped writing this long after.
LONGEST_RUN_SECONDS = 900
# Deleted repositories swept per pass: one scan of the table serves them all.
DELETED_PER_PASS = 25
HOLD_SECONDS = 60
# A sweep starts no step with less than this left of its hold or of the pass's budget.
STEP_SECONDS = 10

Outcome = Literal["swept", "clean", "busy", "damaged", "stopped", "deleted"]


@dataclass(frozen=True)
class Doomed:
    """An S3 object a sweep deletes (or would delete, in a dry run)."""

    key: str
    bytes: int


@dataclass
class RepoSweep:
    """What one repository's sweep deleted, or would delete in a dry run, and why it stopped."""

    repo_id: str
    name: str
    outcome: Outcome = "clean"
    reason: str = ""
    commits: int = 0
    snapshots: int = 0
    packs: int = 0
    items: int = 0
    files: list[Doomed] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)


@dataclass(frozen=True)
class GcReport:
    dry_run: bool
    repositories: list[RepoSweep]
    complete: bool
    seconds: float
    dynamodb_requests: int
    s3_requests: int

    @property
    def items(self) -> int:
        return sum(r.items for r in self.repositories)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.repositories)


class _Unsweepable(Exception):
    """The repository is left as it is this pass; ``outcome`` says why."""

    def __init__(self, outcome: Outcome, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


@dataclass(frozen=True)
class _Seen:
    """A repository's roots and pushes as read: read again under the hold, they must match."""

    heads: dict[str, str]
    named: tuple[tuple[str, str], ...]  # (tag or release, commit id) of every tag and release
    uploads: dict[str, StoredFile]
    pushes: dict[str, PushRecord]


@dataclass(frozen=True)
class _Marked:
    commits: set[str]
    snapshots: set[str]
    objects: set[str]


@dataclass
class _Plan:
    commits: list[str]
    snapshots: list[str]
    dead_packs: list[str]
    files: list[Doomed]


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp() if stamp else 0.0


@dataclass
class GarbageCollector:
    stores: Stores
    access: RepoAccessService
    grace_seconds: int
    hold_seconds: int = HOLD_SECONDS
    longest_run_seconds: int = LONGEST_RUN_SECONDS

    def collect(
        self,
        caller: Caller,
        repo: str | None,
        dry_run: bool,
        grace_seconds: int | None,
        budget_seconds: float,
    ) -> GcReport:
        """One pass on behalf of an admin: every repository, or the one named ``owner/name``."""
        require_site_admin(caller, "collect garbage")
        repo_ids = None
        if repo is not None:
            owner, _, name = repo.partition("/")
            repo_ids = [self.access.by_slug(caller, owner, name, "admin").repo_id]
        return self.run(dry_run, grace_seconds, repo_ids, budget_seconds)

    def run(
        self,
        dry_run: bool = False,
        grace_seconds: int | None = None,
        repo_ids: Sequence[str] | None = None,
        budget_seconds: float = math.inf,
    ) -> GcReport:
        """One pass over ``repo_ids`` (live repositories), or over every repository."""
        started = time.monotonic()
        deadline = started + budget_seconds
        grace = self.grace_seconds if grace_seconds is None else grace_seconds
        sweeps: list[RepoSweep] = []
        complete = True
        with counting() as tally:
            uploads = self._uploads(repo_ids)
            live: list[Repo] = []
            orphans: list[DeletedRepo] = []
            for repo_id in sorted(uploads) if repo_ids is None else repo_ids:
                repo = self.stores.repos.get(repo_id)
                if repo is not None:
                    live.append(repo)
                elif repo_ids is None:
                    orphans.append(DeletedRepo(repo_id, "", time.time()))
            for repo in live:
                if time.monotonic() > deadline - STEP_SECONDS:
                    complete = False
                    break
                sweeps.append(self._sweep(repo, uploads.get(repo.repo_id, {}), grace, dry_run))
            if repo_ids is None and complete:
                sweeps += self._sweep_deleted(orphans, dry_run)
        return GcReport(
            dry_run=dry_run,
            repositories=sweeps,
            complete=complete,
            seconds=time.monotonic() - started,
            dynamodb_requests=tally.dynamodb,
            s3_requests=tally.s3,
        )

    def _uploads(self, repo_ids: Sequence[str] | None) -> dict[str, dict[str, StoredFile]]:
        """Every upload of the repositories (of all of them: one listing), by pack hash."""
        if repo_ids is None:
            prefixes = [layout.UPLOADS]
        else:
            prefixes = [f"{layout.UPLOADS}{r}/" for r in repo_ids]
        found: dict[str, dict[str, StoredFile]] = {}
        for prefix in prefixes:
            for stored in self.stores.bucket.files(prefix):
                upload = UploadKey.parse(stored.key)
                if upload is not None:
                    found.setdefault(upload.repo_id, {})[upload.mpack_hex] = stored
        return found

    # --- a live repository --------------------------------------------------------------------

    def _sweep(
        self, repo: Repo, uploads: dict[str, StoredFile], grace: int, dry_run: bool
    ) -> RepoSweep:
        sweep = RepoSweep(repo.repo_id, repo.full_name)
        try:
            seen = self._seen(repo.repo_id, uploads)
            plan = self._plan(repo.repo_id, seen, time.time() - grace)
            self._count(repo.repo_id, plan, sweep)
            if sweep.items or sweep.files:
                sweep.outcome = "swept"
                if not dry_run:
                    self._delete(repo.repo_id, seen, plan, sweep)
        except _Unsweepable as refusal:
            if refusal.outcome != "stopped":
                # Nothing was deleted: what was planned is not what happened.
                sweep = RepoSweep(repo.repo_id, repo.full_name)
            sweep.outcome, sweep.reason = refusal.outcome, refusal.reason
        return sweep

    def _seen(self, repo_id: str, uploads: dict[str, StoredFile] | None = None) -> _Seen:
        if uploads is None:
            uploads = self._uploads([repo_id]).get(repo_id, {})
        pushes = self.stores.pushes.get_many(repo_id, list(uploads))
        now = time.time()
        running = [p for p in pushes.values() if p.state == "processing" and _leased(p, now)]
        if running:
            raise _Unsweepable("busy", f"push {running[0].push_id} is being ingested")
        releases = self.stores.releases
        named = [(t["tag_id"], t["commit_id"]) for t in releases.tags(repo_id)]
        named += [(r["tag"], r["commit_id"]) for r in releases.releases(repo_id)]
        return _Seen(self.stores.refs.heads(repo_id), tuple(sorted(named)), uploads, pushes)

    def _plan(self, repo_id: str, seen: _Seen, horizon: float) -> _Plan:
        packs = self.stores.pack_index.stored(repo_id)
        contents = {h: self._records(item["s3_key"]) for h, item in packs.items.items()}
        recent = {h for h, p in seen.pushes.items() if _seconds(p.updated_at) >= horizon}
        roots = set(seen.heads.values()) | {commit for _, commit in seen.named}
        required = set(roots)
        for push in (seen.pushes[h] for h in recent):
            moves = push.result.updates if push.result else ()
            roots |= {c for m in moves for c in (m.head, m.previous_head) if c}
        for mpack_hex in recent & contents.keys():
            roots |= contents[mpack_hex].commits
        marked = self._mark(repo_id, roots, required)
        live = self._live_packs(repo_id, marked.objects, recent & packs.items.keys())
        dead = sorted(packs.items.keys() - live)
        commits = set().union(*(c.commits for c in contents.values())) - marked.commits
        snapshots = set().union(*(c.snapshots for c in contents.values())) - marked.snapshots
        files = self._doomed_files(repo_id, seen, packs, dead, horizon, marked)
        files += self._doomed_values(repo_id, commits, snapshots)
        return _Plan(sorted(commits), sorted(snapshots), dead, files)

    def _live_packs(self, repo_id: str, objects: set[str], kept: set[str]) -> set[str]:
        """Packs enough to hold every marked object, ``kept`` first, then the packs holding
        most of them: a pack whose objects were all pushed again in others is not needed (the
        sweep rewrites the MIDX, so a lookup never stops at a pack it deletes)."""
        holders = self.stores.pack_index.holders(repo_id, objects)
        live = set(kept)
        wanted = objects - set().union(*(holders.get(h, set()) for h in live))
        for mpack_hex in sorted(holders, key=lambda h: (-len(holders[h]), h)):
            if wanted & holders[mpack_hex]:
                live.add(mpack_hex)
                wanted -= holders[mpack_hex]
        if wanted:
            lost = min(wanted)
            raise _Unsweepable("damaged", f"object {lost} of a reachable snapshot is in no pack")
        return live

    def _records(self, s3_key: str) -> PackRecords:
        stream = self.stores.packs.open(s3_key)
        if stream is None:
            raise _Unsweepable("damaged", f"pack {s3_key} has a PACK item and no bytes")
        try:
            with stream:
                return read_pack_records(stream, s3_key)
        except ServiceError as error:
            raise _Unsweepable("damaged", error.message) from None

    def _mark(self, repo_id: str, roots: set[str], required: set[str]) -> _Marked:
        """Everything the roots reach. A root from a push record may be gone (never written,
        or collected once it fell out of the grace period); any other must be there."""
        found: dict[str, StoredCommit] = {}
        absent: set[str] = set()
        wanted = set(roots)
        while wanted:
            read = self.stores.commits.get_many(repo_id, wanted)
            found.update(read)
            absent |= wanted - read.keys()
            # Each commit item lists its next first-parent ancestors: read them in this round
            # rather than one generation per round.
            nearby = {a for c in read.values() for a in (*c.record.parent_ids, *c.ancestors)}
            wanted = nearby - found.keys() - absent
        missing = required - found.keys()
        missing |= {p for c in found.values() for p in c.record.parent_ids} - found.keys()
        if missing:
            raise _Unsweepable("damaged", f"commit {min(missing)} of the history is missing")
        snapshots = self.stores.snapshots
        items: dict[str, Item] = {}
        wanted = {c.record.snapshot_id for c in found.values()}
        while wanted:
            read_items = snapshots.items(repo_id, wanted)
            if len(read_items) < len(wanted):
                lost = min(wanted - read_items.keys())
                raise _Unsweepable("damaged", f"snapshot {lost} of a reachable commit is missing")
            items.update(read_items)
            chained = {s for i in read_items.values() for s in snapshots.chain_of(i)}
            wanted = chained - items.keys()
        objects = set().union(*(snapshots.objects_named(i) for i in items.values()))
        return _Marked(set(found), set(items), objects)

    def _doomed_files(
        self,
        repo_id: str,
        seen: _Seen,
        packs: StoredPacks,
        dead: Collection[str],
        horizon: float,
        marked: _Marked,
    ) -> list[Doomed]:
        """The uploads and files of ``repos/<repo_id>/`` the sweep deletes."""
        doomed = [
            Doomed(seen.uploads[h].key, seen.uploads[h].size) for h in dead if h in seen.uploads
        ]
        for mpack_hex, upload in seen.uploads.items():
            push = seen.pushes.get(mpack_hex)
            never_ingested = mpack_hex not in packs.items and upload.modified < horizon
            if never_ingested and (push is None or _seconds(push.updated_at) < horizon):
                doomed.append(Doomed(upload.key, upload.size))
        kept = packs.index_files(leaving_out=dead)
        gone = packs.index_files() - kept
        for stored in self.stores.bucket.files(f"{layout.REPOSITORIES}{repo_id}/"):
            kind = stored.key.split("/")[2]
            old = stored.modified < horizon
            if kind == "packs":
                unnamed = stored.key not in kept and (old or stored.key in gone)
            elif kind == "midx":
                unnamed = stored.key != packs.midx_key and old
            elif kind == "objects":
                unnamed = stored.key.rsplit("/", 1)[1] not in marked.objects and old
            else:
                continue
            if unnamed:
                doomed.append(Doomed(stored.key, stored.size))
        return doomed

    def _doomed_values(
        self, repo_id: str, commits: Collection[str], snapshots: Collection[str]
    ) -> list[Doomed]:
        """The S3 values (records, deltas, checkpoints too large for an item) of the items."""
        wanted = {layout.large_value(repo_id, "commits", c) for c in commits}
        for kind in ("deltas", "checkpoints"):
            wanted |= {layout.large_value(repo_id, kind, s) for s in snapshots}
        if not wanted:
            return []
        prefix = f"{layout.REPOSITORIES}{repo_id}/"
        return [
            Doomed(f.key, f.size)
            for kind in ("commits", "deltas", "checkpoints")
            for f in self.stores.bucket.files(f"{prefix}{kind}/")
            if f.key in wanted
        ]

    def _count(self, repo_id: str, plan: _Plan, sweep: RepoSweep) -> None:
        """Keep only the items still there, children and dependants first, and count them."""
        generations = self.stores.commits.generations(repo_id, plan.commits)
        plan.commits = sorted(generations, key=lambda c: (-generations[c][1], c))
        chains = self.stores.snapshots.chains(repo_id, plan.snapshots)
        plan.snapshots = sorted(chains, key=lambda s: (-len(chains[s]), s))
        sweep.commits, sweep.snapshots, sweep.packs = (
            len(plan.commits),
            len(plan.snapshots),
            len(plan.dead_packs),
        )
        sweep.items = sweep.commits + sweep.snapshots + sweep.packs
        sweep.files = plan.files

    def _delete(self, repo_id: str, seen: _Seen, plan: _Plan, sweep: RepoSweep) -> None:
        hold = self.stores.gc_holds.take(repo_id, self.hold_seconds)
        if hold is None:
            raise _Unsweepable("busy", "another collection holds the repository")
        try:
            if self._seen(repo_id) != seen:
                raise _Unsweepable("busy", "a push or a ref changed the repository meanwhile")
            table = self.stores.table
            self._step(hold)
            table.delete_many([keys.commit(repo_id, c) for c in plan.commits], ordered=True)
            self._step(hold)
            table.delete_many([keys.snapshot(repo_id, s) for s in plan.snapshots], ordered=True)
            self._step(hold)
            self.stores.pack_index.forget(repo_id, plan.dead_packs)
            self._step(hold)
            kept = self.stores.bucket.delete_keys(f.key for f in plan.files)
            if kept:
                sweep.reason = f"storage kept {len(kept)} object(s): {kept[0][0]} {kept[0][1]}"
        finally:
            self.stores.gc_holds.give_back(hold)

    @staticmethod
    def _step(hold: Hold) -> None:
        if hold.left() < STEP_SECONDS:
            raise _Unsweepable("stopped", "the hold ran out; the next pass goes on")

    # --- deleted repositories -----------------------------------------------------------------

    def _sweep_deleted(self, orphans: list[DeletedRepo], dry_run: bool) -> list[RepoSweep]:
        """Every item and file of deleted repositories: the tombstoned ones, and those found
        with uploads and no META item (deleted before tombstones were written)."""
        if not dry_run:
            for orphan in orphans:
                self.stores.repos.bury(orphan.repo_id)
        known = {d.repo_id for d in orphans}
        tombstones = [*orphans, *(d for d in self.stores.repos.deleted() if d.repo_id not in known)]
        tombstones = tombstones[:DELETED_PER_PASS]
        if not tombstones:
            return []
        keyed: dict[str, list[Key]] = {d.repo_id: [] for d in tombstones}
        prefixes = [p for d in tombstones for p in keys.repo_keyed_prefixes(d.repo_id)]
        for key in self.stores.table.scan_keys(prefixes):
            keyed[key["pk"].split("#")[1]].append(key)
        return [self._sweep_one_deleted(d, keyed[d.repo_id], dry_run) for d in tombstones]

    def _sweep_one_deleted(
        self, deleted: DeletedRepo, keyed: list[Key], dry_run: bool
    ) -> RepoSweep:
        repo_id = deleted.repo_id
        partition = self.stores.table.query(keys.repo_partition(repo_id), "")
        found = [*keyed, *({"pk": i["pk"], "sk": i["sk"]} for i in partition)]
        kinds = [k["pk"].split("#")[0] for k in keyed]
        sweep = RepoSweep(
            repo_id,
            deleted.full_name,
            "deleted",
            commits=kinds.count("COMMIT"),
            snapshots=kinds.count("SNAP"),
            packs=sum(1 for k in found if k["sk"].startswith(keys.PACK_SK)),
            items=len(found),
            files=[
                Doomed(f.key, f.size)
                for prefix in layout.repo_prefixes(repo_id)
                for f in self.stores.bucket.files(prefix)
            ],
        )
        if dry_run:
            return sweep
        self.stores.table.delete_many(found)
        kept = self.stores.bucket.delete_keys(f.key for f in sweep.files)
        if kept:
            sweep.reason = f"storage kept {len(kept)} object(s): {kept[0][0]} {kept[0][1]}"
        elif time.time() - deleted.deleted_at >= self.longest_run_seconds:
            self.stores.repos.forget(repo_id)
        else:
            sweep.reason = "swept again by a later pass, once no ingestion can still be writing"
        return sweep


def _leased(push: PushRecord, now: float) -> bool:
    return push.lease_until is not None and push.lease_until > now
