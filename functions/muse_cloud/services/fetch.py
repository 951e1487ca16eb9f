"""Fetch and clone: an mpack of what the caller wants minus what it has, built from the store
(once: the same heads and haves are answered with the pack built for them before).

An API call ends at 29 s (template.yaml), and building the pack of a long history takes longer:
a build still running after ``build_seconds`` is handed to the unpack function (900 s) through
an object the bucket notifies it of, and the caller polls ``build`` until the pack is there.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace

from muse_cloud.domain.errors import ServiceError, not_found
from muse_cloud.domain.identities import Caller
from muse_cloud.services.access import RepoAccessService
from muse_cloud.services.ids import checked_id
from muse_cloud.storage.commits import StoredCommit
from muse_cloud.storage.fetch_packs import BuildAsked, BuiltPack
from muse_cloud.storage.layout import FetchBuildKey
from muse_cloud.storage.pack_index import ObjectLocation
from muse_cloud.storage.stores import Stores
from muse_core.commits import CommitRecord
from muse_core.errors import MuseError
from muse_core.limits import MIB
from muse_core.mpack import build_pack, encode_mpack

MAX_WANTS = 1_000
# Reading a gap this small costs less than another GET's round trip.
MERGE_GAP_BYTES = 1 * MIB
# The most one GET brings into the function's memory (a single larger object still comes whole).
MAX_SPAN_BYTES = 64 * MIB
_RECENT_MANIFESTS = 8
# Snapshot items read per request while walking a history (one BatchGetItem).
_SNAPSHOTS_PER_READ = 100
# How long a caller waits before asking again about a pack built in the background.
BUILD_POLL_SECONDS = 2
# A build handed over this long ago and still not done was lost (its notification, or a run
# the unpack function's 900 s timeout ended): a fetch asking for it again hands it over again.
LOST_BUILD_SECONDS = 900


class _OutOfTime(Exception):
    """A build in an API call reached its time: the unpack function builds it instead."""


@dataclass
class StoreHistory:
    """The server's store of one repository as a muse_core ``NumberedHistory``."""

    repo_id: str
    stores: Stores
    recent: OrderedDict[str, dict[str, str]] = field(default_factory=OrderedDict)
    read: dict[str, StoredCommit] = field(default_factory=dict)
    # time.monotonic() past which reading more raises _OutOfTime.
    deadline: float = math.inf

    def _on_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise _OutOfTime

    def commits(self, commit_ids: Collection[str]) -> dict[str, CommitRecord]:
        wanted = [c for c in commit_ids if c not in self.read]
        if wanted:
            self._on_time()
            found = self.stores.commits.get_many(self.repo_id, wanted)
            self.read.update(found)
            # Read the ancestors the walk is about to ask for along with these.
            ahead = {a for s in found.values() for a in s.ancestors if a not in self.read}
            if ahead:
                self.read.update(self.stores.commits.get_many(self.repo_id, ahead))
        return {c: self.read[c].record for c in commit_ids if c in self.read}

    def generation(self, commit_id: str) -> int:
        return self.read[commit_id].generation

    def manifest(self, snapshot_id: str) -> dict[str, str]:
        manifest = self.stores.snapshots.manifest(self.repo_id, snapshot_id, self.recent)
        if manifest is None:
            raise not_found("snapshot", snapshot_id)
        return self._remember(snapshot_id, manifest)

    def manifests(self, snapshot_ids: list[str]) -> Iterator[dict[str, str]]:
        """Items read a hundred at a time; each rebuilt on the previous manifest when that is
        its delta base, as it is along a history packed oldest first."""
        for start in range(0, len(snapshot_ids), _SNAPSHOTS_PER_READ):
            batch = snapshot_ids[start : start + _SNAPSHOTS_PER_READ]
            self._on_time()
            items = self.stores.snapshots.items(self.repo_id, batch)
            for sid in batch:
                if sid not in items:
                    raise not_found("snapshot", sid)
                manifest = self.stores.snapshots.rebuild(self.repo_id, sid, items[sid], self.recent)
                yield self._remember(sid, manifest)

    def _remember(self, snapshot_id: str, manifest: dict[str, str]) -> dict[str, str]:
        self.recent[snapshot_id] = manifest
        while len(self.recent) > _RECENT_MANIFESTS:
            self.recent.popitem(last=False)
        return manifest

    def objects(self, object_ids: list[str]) -> dict[str, bytes]:
        """One ranged GET per run of nearby objects in a pack, not one per object; and never
        one spanning the far ends of a large pack."""
        self._on_time()
        locations = self.stores.pack_index.locate_all(self.repo_id, object_ids)
        missing = [o for o in object_ids if o not in locations]
        if missing:
            raise ServiceError(
                "missing_object", "an indexed snapshot names a lost object", missing[0]
            )
        found: dict[str, bytes] = {}
        for span in read_spans(locations[o] for o in dict.fromkeys(object_ids)):
            data = self.stores.packs.read_range(span.s3_key, span.start, span.end - span.start)
            for loc in span.members:
                found[loc.object_id] = data[
                    loc.offset - span.start : loc.offset - span.start + loc.length
                ]
        return {oid: found[oid] for oid in object_ids}


@dataclass
class Span:
    """One ranged GET: ``[start, end)`` of a pack, and the objects it holds."""

    s3_key: str
    start: int
    end: int
    members: list[ObjectLocation]


def read_spans(locations: Iterable[ObjectLocation]) -> list[Span]:
    """Objects of the same pack merged into one span while the bytes read in between stay
    small (<= ``MERGE_GAP_BYTES``) and the span fits in memory (<= ``MAX_SPAN_BYTES``)."""
    by_pack: dict[str, list[ObjectLocation]] = {}
    for loc in locations:
        by_pack.setdefault(loc.s3_key, []).append(loc)
    spans: list[Span] = []
    for s3_key, locs in by_pack.items():
        current: Span | None = None
        for loc in sorted(locs, key=lambda loc: loc.offset):
            end = loc.offset + loc.length
            if (
                current is not None
                and loc.offset - current.end <= MERGE_GAP_BYTES
                and max(end, current.end) - current.start <= MAX_SPAN_BYTES
            ):
                current.end = max(end, current.end)
                current.members.append(loc)
            else:
                current = Span(s3_key, loc.offset, end, [loc])
                spans.append(current)
    return spans


@dataclass(frozen=True)
class FetchPack:
    """A pack built for a fetch, in S3 behind a short-lived URL; or, while it is built in the
    background, the build to ask about (``FetchService.build``) and nothing else."""

    status: str  # "ready", or "building"
    build_id: str
    branch_heads: dict[str, str]
    download_url: str | None = None
    mpack_key: str | None = None
    size_bytes: int | None = None
    commits: int | None = None
    snapshots: int | None = None
    objects: int | None = None
    retry_after_seconds: int | None = None

    @classmethod
    def ready(cls, built: BuiltPack, build_id: str, download_url: str) -> FetchPack:
        return cls(
            status="ready",
            build_id=build_id,
            branch_heads=built.branch_heads,
            download_url=download_url,
            mpack_key=built.mpack_key,
            size_bytes=built.size_bytes,
            commits=built.commits,
            snapshots=built.snapshots,
            objects=built.objects,
        )

    @classmethod
    def building(cls, build_id: str, branch_heads: dict[str, str]) -> FetchPack:
        return cls("building", build_id, branch_heads, retry_after_seconds=BUILD_POLL_SECONDS)


@dataclass
class FetchService:
    stores: Stores
    access: RepoAccessService
    build_seconds: float = math.inf

    def fetch(
        self, caller: Caller, owner: str, name: str, want: list[str], have: list[str]
    ) -> FetchPack:
        repo = self.access.by_slug(caller, owner, name, "read")
        if len(want) > MAX_WANTS or len(have) > MAX_WANTS:
            raise ServiceError("limit_exceeded", f"at most {MAX_WANTS} wants and haves", "want")
        heads = self.stores.refs.heads(repo.repo_id)
        wanted = [checked_id(c, "want") for c in want] or sorted(set(heads.values()))
        haves = [checked_id(c, "have") for c in have]
        missing = set(wanted) - self.stores.commits.known(repo.repo_id, wanted)
        if missing:
            raise not_found("commit", sorted(missing)[0])
        tips = {branch: head for branch, head in heads.items() if head in wanted}
        untracked = [c for c in wanted if c not in tips.values()]
        asked = BuildAsked(tips, untracked, haves)
        request = asked.request_id()
        built = self.stores.fetch_packs.find(repo.repo_id, request)
        if built is not None:
            return self._ready(built, request)
        key = FetchBuildKey(repo.repo_id, request)
        earlier = self._handed_over(key)
        if earlier is not None and time.time() - earlier.asked_at < LOST_BUILD_SECONDS:
            # Asked again while it builds: it is not built twice.
            return FetchPack.building(request, tips)
        try:
            built = self._build(repo.repo_id, request, asked, time.monotonic() + self.build_seconds)
        except _OutOfTime:
            handed_over = replace(asked, asked_at=time.time())
            self.stores.fetch_packs.ask_build(repo.repo_id, request, handed_over)
            return FetchPack.building(request, tips)
        return self._ready(built, request)

    def build(self, caller: Caller, owner: str, name: str, build_id: str) -> FetchPack:
        """A pack ``fetch`` handed to the background: ready, still building, or why it failed."""
        repo = self.access.by_slug(caller, owner, name, "read")
        request = checked_id(build_id, "build_id")
        built = self.stores.fetch_packs.find(repo.repo_id, request)
        if built is not None:
            return self._ready(built, request)
        asked = self._handed_over(FetchBuildKey(repo.repo_id, request))
        if asked is None:
            raise not_found("fetch build", build_id)
        return FetchPack.building(request, asked.branch_heads)

    def _handed_over(self, key: FetchBuildKey) -> BuildAsked | None:
        """What was handed to the unpack function and is not built, its refusal raised; None
        if nothing was (or it has expired)."""
        asked = self.stores.fetch_packs.build_asked(key)
        if asked is None:
            return None
        failure = self.stores.fetch_packs.build_failure(key)
        if failure is not None:
            raise ServiceError(failure["code"], failure["message"], failure.get("item"))
        return asked

    def build_handed_over(self, key: FetchBuildKey) -> None:
        """The unpack function's part: build what ``fetch`` handed over, once, whatever the
        number of deliveries; a refusal is kept for the callers polling it."""
        if self.stores.fetch_packs.find(key.repo_id, key.request) is not None:
            return
        asked = self.stores.fetch_packs.build_asked(key)
        if asked is None or self.stores.repos.get(key.repo_id) is None:
            return  # expired, or its repository deleted: nobody can be waiting for it
        try:
            self._build(key.repo_id, key.request, asked, math.inf)
        except (ServiceError, MuseError) as error:
            self.stores.fetch_packs.fail_build(key, error.as_dict())

    def _build(self, repo_id: str, request: str, asked: BuildAsked, deadline: float) -> BuiltPack:
        source = StoreHistory(repo_id, self.stores, deadline=deadline)
        pack = build_pack(source, asked.packed_heads(), asked.have)
        pack["branch_heads"] = asked.branch_heads
        pack["repo_id"] = repo_id
        counts = (len(pack["commits"]), len(pack["snapshots"]), len(pack["objects"]))
        data = encode_mpack(pack)
        return self.stores.fetch_packs.keep(repo_id, request, data, counts, asked.branch_heads)

    def _ready(self, built: BuiltPack, request: str) -> FetchPack:
        return FetchPack.ready(built, request, self.stores.packs.presign_download(built.s3_key))
