"""Wire protocol v0, the Muse client's own (``muse-wire-v0.md``), on top of the mpack services.

A v0 push is converted at the edge: its bundle (full manifests) plus the objects uploaded for
it become an mpack, delta-encoded against what the repository holds, stored where an uploaded
pack would be, and ingested by the one ``IngestService``: the same verification, storage, ref
compare-and-swap and push record as a ``muse-cloud push``. A fetch is an mpack built from the
store by ``build_pack``, answered as the bundle the client parses (full manifests, objects
inline), or refused with a 413 when it would not fit in a Lambda answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgpack

from muse_cloud.domain.errors import ServiceError, not_found
from muse_cloud.domain.identities import Caller
from muse_cloud.domain.repos import Repo
from muse_cloud.services.access import RepoAccessService
from muse_cloud.services.fetch import StoreHistory
from muse_cloud.services.ids import checked_id
from muse_cloud.services.push import PushService
from muse_cloud.storage.layout import UploadKey
from muse_cloud.storage.stores import Stores
from muse_core.commits import CommitRecord
from muse_core.errors import MuseError
from muse_core.mpack import build_pack, encode_mpack, mpack_key
from muse_core.paths import validate_branch_name

# A synchronous Lambda answers at most 6 MB (6,291,456 bytes) of JSON, and a binary body
# travels base64-encoded in it: 4/3 of its size, plus the envelope.
MAX_ANSWER_BYTES = 4_500_000
MAX_IDS = 100_000
MAX_WANTS = 1_000
MAX_NEGOTIATE_HAVES = 1_000
# msgpack's own framing of a full-manifest entry beyond its path and id.
_ENTRY_OVERHEAD = 4


def _ids(values: Any, where: str, limit: int = MAX_IDS) -> list[str]:
    if not isinstance(values, list):
        raise ServiceError("invalid_body", f"{where} must be a list of ids", where)
    if len(values) > limit:
        raise ServiceError("limit_exceeded", f"at most {limit} ids in {where}", where)
    return [checked_id(v, where) for v in values]


def too_large(size: int, what: str, item: str | None) -> ServiceError:
    return ServiceError(
        "answer_too_large",
        f"the {what} answer would exceed {MAX_ANSWER_BYTES:,} bytes (a synchronous Lambda "
        f"answers at most 6 MB, base64); it is at least {size:,}: clone with `muse-cloud clone`, "
        "or fetch from a nearer commit",
        item,
    )


@dataclass
class _BundleHistory:
    """A v0 push bundle as a ``HistorySource``: its commits and full manifests, over the stored
    commits it builds on, and the objects uploaded for it that the repository lacks."""

    repo_id: str
    stores: Stores
    store: StoreHistory
    commit_records: dict[str, CommitRecord]
    full_manifests: dict[str, dict[str, str]]
    inline: dict[str, bytes]
    base_ids: set[str] = field(default_factory=set)

    def commits(self, commit_ids: Collection[str]) -> dict[str, CommitRecord]:
        found = {c: self.commit_records[c] for c in commit_ids if c in self.commit_records}
        # Stored commits only where the bundle ends: the walk never goes into stored history.
        outside = [c for c in commit_ids if c in self.base_ids and c not in found]
        if outside:
            found.update(self.store.commits(outside))
        return found

    def manifest(self, snapshot_id: str) -> dict[str, str]:
        sent = self.full_manifests.get(snapshot_id)
        if sent is not None:
            return sent
        stored = self.stores.snapshots.manifest(self.repo_id, snapshot_id, self.store.recent)
        if stored is None:
            raise ServiceError(
                "missing_snapshot",
                "a commit names a snapshot neither in the bundle nor held",
                snapshot_id,
            )
        return stored

    def manifests(self, snapshot_ids: list[str]) -> Iterator[dict[str, str]]:
        return (self.manifest(sid) for sid in snapshot_ids)

    def objects(self, object_ids: list[str]) -> dict[str, bytes]:
        """Held objects are left out (the receiver has them), and so is anything nobody
        uploaded: verification then refuses the manifest entry that names it."""
        held = self.stores.pack_index.known(self.repo_id, object_ids)
        wanted = [o for o in object_ids if o not in held]
        found = {o: self.inline[o] for o in wanted if o in self.inline}
        found.update(
            self.stores.staging.get_many(self.repo_id, [o for o in wanted if o not in found])
        )
        return found


@dataclass
class _BoundedHistory:
    """The store as a ``HistorySource`` for a fetch answer, refusing as soon as the answer's
    full manifests and objects outgrow ``MAX_ANSWER_BYTES``, before their bytes are read."""

    store: StoreHistory
    what: str
    item: str | None
    used: int = 0
    full_manifests: dict[str, dict[str, str]] = field(default_factory=dict)

    def _charge(self, size: int) -> None:
        self.used += size
        if self.used > MAX_ANSWER_BYTES:
            raise too_large(self.used, self.what, self.item)

    def commits(self, commit_ids: Collection[str]) -> dict[str, CommitRecord]:
        return self.store.commits(commit_ids)

    def manifest(self, snapshot_id: str) -> dict[str, str]:
        return self.store.manifest(snapshot_id)

    def manifests(self, snapshot_ids: list[str]) -> Iterator[dict[str, str]]:
        for sid, manifest in zip(snapshot_ids, self.store.manifests(snapshot_ids), strict=True):
            self._charge(sum(len(p.encode()) + 66 + _ENTRY_OVERHEAD for p in manifest))
            self.full_manifests[sid] = manifest
            yield manifest

    def objects(self, object_ids: list[str]) -> dict[str, bytes]:
        locations = self.store.stores.pack_index.locate_all(self.store.repo_id, object_ids)
        self._charge(sum(loc.length + 80 for loc in locations.values()))
        return self.store.objects(object_ids)


def _record(value: Any, where: str) -> CommitRecord:
    if not isinstance(value, dict):
        raise ServiceError("invalid_type", f"{where} must be a map", where)
    for name in ("commit_id", "snapshot_id", "message", "committed_at"):
        if name not in value:
            raise ServiceError("invalid_commit", f"{where} has no {name}", where)
    checked_id(value["commit_id"], f"{where}.commit_id")
    for name in ("parent_commit_id", "parent2_commit_id"):
        if value.get(name) is not None:
            checked_id(value[name], f"{where}.{name}")
    return CommitRecord.from_dict(value)


def _manifests(values: Any) -> dict[str, dict[str, str]]:
    if not isinstance(values, list):
        raise ServiceError("invalid_type", "bundle.snapshots must be a list", "snapshots")
    found: dict[str, dict[str, str]] = {}
    for index, snapshot in enumerate(values):
        where = f"snapshots[{index}]"
        if not isinstance(snapshot, dict) or not isinstance(snapshot.get("manifest"), dict):
            raise ServiceError("invalid_type", f"{where} needs a manifest map", where)
        sid = checked_id(snapshot.get("snapshot_id"), f"{where}.snapshot_id")
        found[sid] = snapshot["manifest"]
    return found


def inline_objects(values: Any, where: str) -> dict[str, bytes]:
    """``[{object_id, content: bin}]``, each hashed: bytes that are not their id are refused."""
    if not isinstance(values, list):
        raise ServiceError("invalid_body", f"{where} must be a list", where)
    found: dict[str, bytes] = {}
    for index, entry in enumerate(values):
        at = f"{where}[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("content"), bytes):
            raise ServiceError("invalid_body", f"{at} needs object_id and bin content", at)
        object_id = checked_id(entry.get("object_id"), f"{at}.object_id")
        if hashlib.sha256(entry["content"]).hexdigest() != object_id:
            raise ServiceError(
                "object_hash_mismatch", f"{at}: content does not hash to its id", object_id
            )
        found[object_id] = entry["content"]
    return found


@dataclass
class WireV0Service:
    stores: Stores
    access: RepoAccessService
    push_service: PushService

    def filter_objects(
        self, caller: Caller, owner: str, name: str, object_ids: Any
    ) -> dict[str, Any]:
        repo = self.access.by_slug(caller, owner, name, "write")
        ids = _ids(object_ids, "object_ids")
        held = self.stores.pack_index.known(repo.repo_id, ids)
        return {"missing": [o for o in dict.fromkeys(ids) if o not in held]}

    def presign(
        self, caller: Caller, owner: str, name: str, object_ids: Any, direction: Any
    ) -> dict[str, Any]:
        repo = self.access.by_slug(caller, owner, name, "write")
        if direction != "put":
            raise ServiceError(
                "unsupported_direction",
                "only 'put' is presigned: objects are fetched inline",
                repr(direction),
            )
        ids = _ids(object_ids, "object_ids", MAX_WANTS)
        presigned = {
            o: self.stores.staging.presign_put(repo.repo_id, o) for o in dict.fromkeys(ids)
        }
        return {"presigned": presigned, "inline": []}

    def put_objects(self, caller: Caller, owner: str, name: str, objects: Any) -> dict[str, Any]:
        repo = self.access.by_slug(caller, owner, name, "write")
        found = inline_objects(objects, "objects")
        held = self.stores.pack_index.known(repo.repo_id, list(found))
        self.stores.staging.put_many(
            repo.repo_id, {o: b for o, b in found.items() if o not in held}
        )
        return {"stored": len(found) - len(held), "skipped": len(held)}

    def push(
        self, caller: Caller, owner: str, name: str, bundle: Any, branch: Any, force: bool
    ) -> dict[str, Any]:
        repo = self.access.by_slug(caller, owner, name, "write")
        try:
            validate_branch_name(branch)
        except MuseError as error:
            raise ServiceError.from_core(error) from None
        if not isinstance(bundle, dict):
            raise ServiceError("invalid_body", "bundle must be a map", "bundle")
        sent = bundle.get("commits")
        if not isinstance(sent, list) or not sent:
            raise ServiceError("empty_push", "the bundle carries no commit", "commits")
        records = [_record(c, f"commits[{i}]") for i, c in enumerate(sent)]
        # Walked breadth-first from the pushed head: the first commit is the new head.
        head = records[0].commit_id
        pack = self._pack(repo, records, bundle, branch, head)
        data = encode_mpack(pack)
        if len(data) > self.push_service.max_upload_bytes:
            raise ServiceError("limit_exceeded", "the push is larger than a pack may be")
        key = mpack_key(data)
        upload = UploadKey(repo.repo_id, key.removeprefix("sha256:"))
        # Recorded before the pack lands, as presign does: the S3 event path then ingests it
        # for this branch, head and force too.
        self.stores.pushes.open_pending(
            repo.repo_id,
            upload.mpack_hex,
            key,
            len(data),
            branch,
            head,
            force,
            self.stores.refs.heads(repo.repo_id),
            pusher=self.access.pusher(caller, repo),
        )
        self.stores.packs.put_upload(upload, data)
        record = self.push_service.unpack(caller, owner, name, key, branch, head, force)
        written = record.result
        return {
            "ok": True,
            "message": f"{branch} -> {head[:12]}: {written.commits_written if written else 0} "
            f"commits, {written.objects_written if written else 0} objects",
            "branch_heads": self.stores.refs.heads(repo.repo_id),
            "push_id": record.push_id,
        }

    def _pack(
        self,
        repo: Repo,
        records: list[CommitRecord],
        bundle: dict[str, Any],
        branch: str,
        head: str,
    ) -> dict[str, Any]:
        by_id = {r.commit_id: r for r in records}
        parents = {p for r in records for p in r.parent_ids if p not in by_id}
        held = self.stores.commits.known(repo.repo_id, [*by_id, *parents])
        source = _BundleHistory(
            repo_id=repo.repo_id,
            stores=self.stores,
            store=StoreHistory(repo.repo_id, self.stores),
            commit_records=by_id,
            full_manifests=_manifests(bundle.get("snapshots", [])),
            inline=inline_objects(bundle.get("objects") or [], "bundle.objects"),
            base_ids=parents & held,
        )
        # Resent commits the repository holds are known, not new: the pack starts after them.
        pack = build_pack(source, {branch: head}, sorted(held))
        pack["repo_id"] = records[0].fields.get("repo_id")
        return pack

    def fetch(self, caller: Caller, owner: str, name: str, want: Any, have: Any) -> bytes:
        """The bundle as msgpack bytes: ``{commits, snapshots, objects}``, full manifests."""
        repo = self.access.by_slug(caller, owner, name, "read")
        wants = _ids(want, "want", MAX_WANTS)
        haves = _ids(have, "have")
        heads = self.stores.refs.heads(repo.repo_id)
        wanted = list(dict.fromkeys(wants)) or sorted(set(heads.values()))
        missing = set(wanted) - self.stores.commits.known(repo.repo_id, wanted)
        if missing:
            raise not_found("commit", sorted(missing)[0])
        source = _BoundedHistory(
            StoreHistory(repo.repo_id, self.stores),
            "fetch",
            wanted[0] if wanted else None,
        )
        pack = build_pack(source, {f"want/{c}": c for c in wanted}, haves)
        commits = pack["commits"]
        # Clients keep a snapshot's created_at as given (it is not hashed): the commit's time.
        created = {c["snapshot_id"]: c.get("committed_at", "") for c in commits}
        snapshots = [
            {
                "snapshot_id": s["snapshot_id"],
                "manifest": source.full_manifests[s["snapshot_id"]],
                "created_at": created.get(s["snapshot_id"], ""),
            }
            for s in pack["snapshots"]
        ]
        answer = msgpack.packb(
            {"commits": commits, "snapshots": snapshots, "objects": pack["objects"]},
            use_bin_type=True,
        )
        if len(answer) > MAX_ANSWER_BYTES:
            raise too_large(len(answer), "fetch", wanted[0] if wanted else None)
        return answer

    def negotiate(
        self, caller: Caller, owner: str, name: str, want: Any, have: Any
    ) -> dict[str, Any]:
        """``ready`` only once the caller holds every wanted commit: until then the client goes
        on offering its commits, and its fetch then names all of them as ``have``, which keeps
        the fetch answer as small as the protocol allows."""
        repo = self.access.by_slug(caller, owner, name, "read")
        wants = _ids(want, "want", MAX_WANTS)
        haves = _ids(have, "have", MAX_NEGOTIATE_HAVES)
        acked = self.stores.commits.known(repo.repo_id, haves)
        ack = [h for h in dict.fromkeys(haves) if h in acked]
        return {"ack": ack, "common_base": None, "ready": bool(wants) and set(wants) <= acked}
