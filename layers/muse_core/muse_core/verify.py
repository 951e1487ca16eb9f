"""The verification engine: a pure check of a pack against what the receiver already holds.

Nothing here writes. ``verify_mpack`` either returns every record the receiver should store,
or raises one ``MuseError`` naming the rule and the offending item, before anything is written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from muse_core.commits import CommitRecord
from muse_core.delta import apply_delta
from muse_core.errors import MuseError
from muse_core.limits import DEFAULT_LIMITS, Limits
from muse_core.mpack import MPACK_VERSION, ObjectEntry, ObjectSink, parse_mpack
from muse_core.paths import validate_branch_name, validate_manifest_path
from muse_core.snapshot import compute_snapshot_id
from muse_core.types import is_id, require_id

# Called once with (snapshot_id, base_id, delta_size) for every snapshot of the pack, in pack
# order, before any is rebuilt; answers the ids whose full manifests should come back.
KeepManifests = Callable[[list[tuple[str, str | None, int]]], Collection[str]]


class ReceiverView(Protocol):
    """Read-only view of what the receiving repository already holds."""

    def known_objects(self, object_ids: Collection[str]) -> set[str]: ...
    def known_snapshots(self, snapshot_ids: Collection[str]) -> set[str]: ...
    def known_commits(self, commit_ids: Collection[str]) -> set[str]: ...
    def snapshot_manifest(self, snapshot_id: str) -> dict[str, str] | None: ...


class EmptyReceiver:
    """A receiver that holds nothing: a first push, or a check of a self-contained pack."""

    def known_objects(self, object_ids: Collection[str]) -> set[str]:
        return set()

    def known_snapshots(self, snapshot_ids: Collection[str]) -> set[str]:
        return set()

    def known_commits(self, commit_ids: Collection[str]) -> set[str]:
        return set()

    def snapshot_manifest(self, snapshot_id: str) -> dict[str, str] | None:
        return None


@dataclass(frozen=True)
class VerifiedSnapshot:
    snapshot_id: str
    parent_snapshot_id: str | None
    delta_upsert: dict[str, str]
    delta_remove: list[str]
    entry_count: int
    manifest: dict[str, str] | None = None


@dataclass
class VerifiedMpack:
    key: str
    size: int
    repo_id: str | None
    branch_heads: dict[str, str]
    commits: list[CommitRecord] = field(default_factory=list)
    snapshots: list[VerifiedSnapshot] = field(default_factory=list)
    objects: list[ObjectEntry] = field(default_factory=list)


_COMMIT_STR_FIELDS = (
    "repo_id", "branch", "author", "sem_ver_bump", "agent_id", "model_id",
    "toolchain_id", "prompt_hash", "signature", "signer_key_id",
)  # fmt: skip


def verify_mpack(
    data: bytes | IO[bytes],
    receiver: ReceiverView,
    *,
    expected_key: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    object_sink: ObjectSink | None = None,
    keep_manifests: KeepManifests | None = None,
) -> VerifiedMpack:
    """Check a pack against the receiver; ``keep_manifests`` says which snapshots should come
    back with their full rebuilt manifest (the receiver's checkpoints)."""
    parsed = parse_mpack(data, limits, object_sink)
    if expected_key is not None and parsed.key != expected_key:
        raise MuseError(
            "mpack_key_mismatch", f"pack bytes hash to {parsed.key}, not the key", expected_key
        )
    fields = parsed.fields
    version = fields.get("mpack_version")
    # An int exactly: 1.0 and True compare equal to 1 but are not the version of the contract.
    if type(version) is not int or version != MPACK_VERSION:
        raise MuseError(
            "unsupported_version", f"mpack_version must be {MPACK_VERSION}", repr(version)
        )
    repo_id = fields.get("repo_id")
    if repo_id is not None and not isinstance(repo_id, str):
        raise MuseError("invalid_type", "repo_id must be a string or nil", repr(repo_id))

    objects = _verify_objects(parsed.objects)
    snapshots = _verify_snapshots(
        _typed_list(fields, "snapshots", limits.max_snapshots),
        objects,
        receiver,
        limits,
        keep_manifests,
    )
    commits = _verify_commits(
        _typed_list(fields, "commits", limits.max_commits),
        {s.snapshot_id for s in snapshots},
        receiver,
    )
    heads = _verify_branch_heads(fields.get("branch_heads", {}), commits, receiver, limits)
    return VerifiedMpack(
        key=parsed.key,
        size=parsed.size,
        repo_id=repo_id,
        branch_heads=heads,
        commits=commits,
        snapshots=snapshots,
        objects=list(objects.values()),
    )


def _typed_list(fields: Mapping[str, Any], name: str, limit: int) -> list[Any]:
    value = fields.get(name, [])
    if not isinstance(value, list):
        raise MuseError("invalid_type", f"{name} must be an array", name)
    if len(value) > limit:
        raise MuseError("limit_exceeded", f"more than {limit} {name}", name)
    return value


def _verify_objects(entries: list[ObjectEntry]) -> dict[str, ObjectEntry]:
    objects: dict[str, ObjectEntry] = {}
    for entry in entries:
        require_id(entry.object_id, "object_id")
        if entry.digest != entry.object_id:
            raise MuseError(
                "object_hash_mismatch",
                f"object content hashes to {entry.digest}",
                entry.object_id,
            )
        objects.setdefault(entry.object_id, entry)
    return objects


def _verify_snapshots(
    raw: list[Any],
    objects: Mapping[str, ObjectEntry],
    receiver: ReceiverView,
    limits: Limits,
    keep_manifests: KeepManifests | None,
) -> list[VerifiedSnapshot]:
    deltas = [_snapshot_delta(item, i) for i, item in enumerate(raw)]
    planned = [
        (d.snapshot_id, d.parent_snapshot_id, len(d.delta_upsert) + len(d.delta_remove))
        for d in deltas
    ]
    keep = set(keep_manifests(planned)) if keep_manifests else set()
    # Rebuilt manifests are kept only while a later delta in the pack still names them as base.
    uses = Counter(d.parent_snapshot_id for d in deltas if d.parent_snapshot_id)
    manifests: dict[str, dict[str, str]] = {}
    verified: dict[str, VerifiedSnapshot] = {}
    wanted_objects: dict[str, tuple[str, str]] = {}
    for delta in deltas:
        sid, base_id = delta.snapshot_id, delta.parent_snapshot_id
        if base_id is None:
            base: Mapping[str, str] = {}
        else:
            found = manifests.get(base_id)
            if found is None and base_id not in verified:
                found = receiver.snapshot_manifest(base_id)
            if found is None:
                raise MuseError(
                    "unknown_delta_base",
                    f"snapshot {sid} is a delta against a snapshot neither sent earlier nor held",
                    base_id,
                )
            base = found
            uses[base_id] -= 1
            if uses[base_id] <= 0:
                manifests.pop(base_id, None)
        for path in delta.delta_remove:
            if path not in base:
                raise MuseError(
                    "invalid_delta", f"snapshot {sid} removes a path its base does not have", path
                )
        manifest = apply_delta(base, delta.delta_upsert, delta.delta_remove)
        if len(manifest) > limits.max_manifest_entries:
            raise MuseError(
                "limit_exceeded", f"more than {limits.max_manifest_entries} manifest entries", sid
            )
        actual = compute_snapshot_id(manifest)
        if actual != sid:
            raise MuseError("snapshot_hash_mismatch", f"rebuilt manifest hashes to {actual}", sid)
        for path, oid in delta.delta_upsert.items():
            if oid not in objects:
                wanted_objects.setdefault(oid, (sid, path))
        if uses[sid] > 0:
            manifests[sid] = manifest
        if sid not in verified:
            kept = manifest if sid in keep else None
            verified[sid] = VerifiedSnapshot(
                sid, base_id, delta.delta_upsert, delta.delta_remove, len(manifest), kept
            )
    if wanted_objects:
        missing = set(wanted_objects) - receiver.known_objects(list(wanted_objects))
        if missing:
            oid = min(missing)
            sid, path = wanted_objects[oid]
            raise MuseError(
                "dangling_object",
                f"snapshot {sid} path {path!r} names an object neither carried nor held",
                oid,
            )
    return list(verified.values())


@dataclass(frozen=True)
class _Delta:
    snapshot_id: str
    parent_snapshot_id: str | None
    delta_upsert: dict[str, str]
    delta_remove: list[str]


def _snapshot_delta(item: Any, index: int) -> _Delta:
    where = f"snapshots[{index}]"
    if not isinstance(item, dict):
        raise MuseError("invalid_type", f"{where} must be a map", where)
    if "manifest" in item:
        raise MuseError("invalid_type", f"{where} carries a full 'manifest'; send a delta", where)
    sid = require_id(item.get("snapshot_id"), f"{where}.snapshot_id")
    parent = item.get("parent_snapshot_id")
    if parent is not None:
        require_id(parent, f"{where}.parent_snapshot_id")
    upsert = item.get("delta_upsert", {})
    remove = item.get("delta_remove", [])
    if not isinstance(upsert, dict):
        raise MuseError("invalid_type", f"{where}.delta_upsert must be a map", sid)
    if not isinstance(remove, list):
        raise MuseError("invalid_type", f"{where}.delta_remove must be an array", sid)
    for path, oid in upsert.items():
        validate_manifest_path(path)
        if not isinstance(oid, str):
            raise MuseError("invalid_type", f"{where} maps {path!r} to a non-string", sid)
        require_id(oid, f"object id of {path!r} in {where}")
    for path in remove:
        validate_manifest_path(path)
        if path in upsert:
            raise MuseError("invalid_delta", f"{where} both upserts and removes a path", path)
    return _Delta(sid, parent, upsert, remove)


def _verify_commits(
    raw: list[Any], pack_snapshots: set[str], receiver: ReceiverView
) -> list[CommitRecord]:
    records = [_commit_record(item, i) for i, item in enumerate(raw)]
    in_pack: dict[str, CommitRecord] = {}
    position = {r.commit_id: i for i, r in reversed(list(enumerate(records)))}
    outside_parents = {p for r in records for p in r.parent_ids if p not in position}
    held_parents = receiver.known_commits(outside_parents) if outside_parents else set()
    outside_snapshots = {r.snapshot_id for r in records} - pack_snapshots
    held_snapshots = receiver.known_snapshots(outside_snapshots) if outside_snapshots else set()
    for index, record in enumerate(records):
        expected = record.expected_id()
        if expected != record.commit_id:
            raise MuseError(
                "commit_id_mismatch", f"commit fields hash to {expected}", record.commit_id
            )
        if record.snapshot_id not in pack_snapshots and record.snapshot_id not in held_snapshots:
            raise MuseError(
                "missing_snapshot",
                f"commit {record.commit_id} names a snapshot neither sent nor held",
                record.snapshot_id,
            )
        for parent in record.parent_ids:
            if parent in position:
                if position[parent] >= index:
                    raise MuseError(
                        "missing_parent",
                        f"commit {record.commit_id} comes before its parent in the pack",
                        parent,
                    )
            elif parent not in held_parents:
                raise MuseError(
                    "missing_parent",
                    f"commit {record.commit_id} names a parent neither sent nor held",
                    parent,
                )
        in_pack.setdefault(record.commit_id, record)
    return list(in_pack.values())


def _commit_record(item: Any, index: int) -> CommitRecord:
    where = f"commits[{index}]"
    if not isinstance(item, dict):
        raise MuseError("invalid_type", f"{where} must be a map", where)
    cid = require_id(item.get("commit_id"), f"{where}.commit_id")
    require_id(item.get("snapshot_id"), f"{where}.snapshot_id")
    for name in ("message", "committed_at"):
        if not isinstance(item.get(name), str):
            raise MuseError("invalid_type", f"{where}.{name} must be a string", cid)
    for name in ("parent_commit_id", "parent2_commit_id"):
        value = item.get(name)
        if value not in (None, ""):
            require_id(value, f"{where}.{name}")
    for name in _COMMIT_STR_FIELDS:
        if name in item and not isinstance(item[name], str):
            raise MuseError("invalid_type", f"{where}.{name} must be a string", cid)
    metadata = item.get("metadata", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise MuseError("invalid_type", f"{where}.metadata must map strings to strings", cid)
    if item.get("structured_delta") is not None and not isinstance(item["structured_delta"], dict):
        raise MuseError("invalid_type", f"{where}.structured_delta must be a map or nil", cid)
    for name in ("breaking_changes", "reviewed_by"):
        value = item.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise MuseError("invalid_type", f"{where}.{name} must be a list of strings", cid)
    for name in ("format_version", "test_runs"):
        value = item.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool):
            raise MuseError("invalid_type", f"{where}.{name} must be an integer", cid)
    return CommitRecord.from_dict(item)


def _verify_branch_heads(
    raw: Any, commits: list[CommitRecord], receiver: ReceiverView, limits: Limits
) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise MuseError("invalid_type", "branch_heads must be a map", "branch_heads")
    if len(raw) > limits.max_branch_heads:
        raise MuseError(
            "limit_exceeded", f"more than {limits.max_branch_heads} branch heads", "branch_heads"
        )
    heads: dict[str, str] = {}
    for branch, head in raw.items():
        validate_branch_name(branch)
        if not is_id(head):
            raise MuseError("invalid_id", f"head of branch {branch!r} is not an id", repr(head))
        heads[branch] = head
    in_pack = {c.commit_id for c in commits}
    outside = set(heads.values()) - in_pack
    missing = outside - receiver.known_commits(outside) if outside else set()
    for branch, head in heads.items():
        if head in missing:
            raise MuseError(
                "missing_commit", f"head of branch {branch!r} is neither sent nor held", head
            )
    return heads
