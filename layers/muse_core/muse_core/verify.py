"""The verification engine: a pure check of a pack against what the receiver already holds.

Nothing here writes. ``verify_mpack`` either returns every record the receiver should store,
or raises one ``MuseError`` naming the rule and the offending item, before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from muse_core.commits import CommitRecord
from muse_core.errors import MuseError, describe
from muse_core.ids import is_id, require_id
from muse_core.limits import DEFAULT_LIMITS, Limits
from muse_core.mpack import MPACK_VERSION, ObjectEntry, ObjectSink, encode_mpack, parse_mpack
from muse_core.paths import validate_branch_name, validate_manifest_path
from muse_core.snapshot import SortedManifest
from muse_core.use_counted import UseCounted

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


# Containers nested in a commit record, the record itself included (json.dumps recurses per level).
MAX_JSON_DEPTH = 64
_JSON_SCALARS = (str, int, float, type(None))  # bool is an int

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
            "unsupported_version", f"mpack_version must be {MPACK_VERSION}", describe(version)
        )
    repo_id = fields.get("repo_id")
    if repo_id is not None and not isinstance(repo_id, str):
        raise MuseError("invalid_type", "repo_id must be a string or nil", describe(repo_id))

    # parse_mpack has checked that commits and snapshots, when present, are bounded arrays.
    objects = _verify_objects(parsed.objects)
    snapshots = _verify_snapshots(
        fields.get("snapshots", []), objects, receiver, limits, keep_manifests
    )
    commits = _verify_commits(
        fields.get("commits", []), {s.snapshot_id for s in snapshots}, receiver
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
    deltas = _snapshot_deltas(raw)
    planned = [
        (d.snapshot_id, d.parent_snapshot_id, len(d.delta_upsert) + len(d.delta_remove))
        for d in deltas
    ]
    keep = set(keep_manifests(planned)) if keep_manifests else set()
    bases: UseCounted[SortedManifest] = UseCounted(
        (d.parent_snapshot_id for d in deltas if d.parent_snapshot_id),
        lambda sid: _held_base(receiver, sid),
    )
    budget = _RebuildBudget(limits)
    verified: list[VerifiedSnapshot] = []
    for delta in deltas:
        base, last_use = _take_base(bases, delta)
        # A base read again later is copied (entries and all); the last reader takes it over.
        budget.charge(delta, len(delta.delta_upsert) + len(delta.delta_remove), 0)
        if not last_use:
            budget.charge(delta, len(base.paths), 0)
        rebuilt = _rebuild(delta, base, limits, budget, in_place=last_use)
        bases.offer(delta.snapshot_id, rebuilt)
        verified.append(
            VerifiedSnapshot(
                snapshot_id=delta.snapshot_id,
                parent_snapshot_id=delta.parent_snapshot_id,
                delta_upsert=delta.delta_upsert,
                delta_remove=delta.delta_remove,
                entry_count=len(rebuilt.paths),
                # A copy: the rebuilt manifest may become a later delta's storage.
                manifest=dict(rebuilt.manifest) if delta.snapshot_id in keep else None,
            )
        )
    _refuse_dangling_objects(deltas, objects, receiver)
    return verified


def _refuse_dangling_objects(
    deltas: list[_Delta], objects: Mapping[str, ObjectEntry], receiver: ReceiverView
) -> None:
    """Every object a delta adds is carried by the pack or held by the receiver."""
    wanted: dict[str, tuple[str, str]] = {}
    for delta in deltas:
        for path, oid in delta.delta_upsert.items():
            if oid not in objects:
                wanted.setdefault(oid, (delta.snapshot_id, path))
    missing = set(wanted) - receiver.known_objects(list(wanted)) if wanted else set()
    if missing:
        oid = min(missing)
        sid, path = wanted[oid]
        raise MuseError(
            "dangling_object",
            f"snapshot {sid} path {path!r} names an object neither carried nor held",
            oid,
        )


class _RebuildBudget:
    """What rebuilding costs: entries handled one by one (a delta's, a copied base's) and
    bytes hashed (C speed), each bounded, so a long history of a large tree goes through while
    a pack that makes the receiver hash without end does not."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.entries = 0
        self.hashed = 0

    def charge(self, delta: _Delta, entries: int, hashed: int) -> None:
        self.entries += entries
        self.hashed += hashed
        for spent, limit, what in (
            (self.entries, self.limits.max_rebuilt_entries, "manifest entries"),
            (self.hashed, self.limits.max_hashed_manifest_bytes, "manifest bytes hashed"),
        ):
            if spent > limit:
                raise MuseError(
                    "limit_exceeded",
                    f"rebuilding the pack's snapshots takes more than {limit} {what}",
                    delta.snapshot_id,
                )


def _held_base(receiver: ReceiverView, snapshot_id: str) -> SortedManifest | None:
    held = receiver.snapshot_manifest(snapshot_id)
    return SortedManifest.of(held) if held is not None else None


def _take_base(bases: UseCounted[SortedManifest], delta: _Delta) -> tuple[SortedManifest, bool]:
    """The delta's base, and whether no later delta reads it (so it may be reused). A base
    the receiver holds is fetched once, however many deltas of the pack name it."""
    if delta.parent_snapshot_id is None:
        return SortedManifest({}, [], []), True
    found, last_use = bases.take(delta.parent_snapshot_id)
    if found is None:
        raise MuseError(
            "unknown_delta_base",
            f"snapshot {delta.snapshot_id} is a delta against a snapshot neither sent "
            "earlier nor held",
            delta.parent_snapshot_id,
        )
    return found, last_use


def _rebuild(
    delta: _Delta, base: SortedManifest, limits: Limits, budget: _RebuildBudget, *, in_place: bool
) -> SortedManifest:
    """The delta applied to its base (``in_place``: in the base's storage), checked to hash to
    its id."""
    sid = delta.snapshot_id
    for path in delta.delta_remove:
        if path not in base.manifest:
            raise MuseError(
                "invalid_delta", f"snapshot {sid} removes a path its base does not have", path
            )
    # Before the base may change: only paths new to it can make a clash.
    added = [path for path in delta.delta_upsert if path not in base.manifest]
    rebuilt = base.apply(delta.delta_upsert, delta.delta_remove, in_place=in_place)
    if len(rebuilt.paths) > limits.max_manifest_entries:
        raise MuseError(
            "limit_exceeded", f"more than {limits.max_manifest_entries} manifest entries", sid
        )
    _refuse_file_directory_clash(sid, added, rebuilt.manifest)
    budget.charge(delta, 0, rebuilt.payload_bytes)
    actual = rebuilt.snapshot_id()
    if actual != sid:
        raise MuseError("snapshot_hash_mismatch", f"rebuilt manifest hashes to {actual}", sid)
    return rebuilt


def _refuse_file_directory_clash(sid: str, added: list[str], manifest: Mapping[str, str]) -> None:
    """No path may be both a file and a directory (``a`` and ``a/b``): no checkout holds both.

    The base holds no clash (it was checked when it was rebuilt), and removing paths cannot
    make one, so only the paths the delta adds (``added``) are checked, and only when it adds
    any.
    """
    if not added:
        return
    directories = _directories(manifest)
    for path in added:
        clash = path if path in directories else _file_parent(path, manifest)
        if clash is not None:
            raise MuseError(
                "invalid_path",
                f"snapshot {sid} holds {clash!r} both as a file and as a directory",
                clash,
            )


def _directories(paths: Iterable[str]) -> set[str]:
    found: set[str] = set()
    # Files share few parents: take each file's parent at C speed, then walk up from those.
    for parent in {path.rpartition("/")[0] for path in paths}:
        while parent and parent not in found:
            found.add(parent)
            parent = parent.rpartition("/")[0]
    return found


def _file_parent(path: str, names: Collection[str]) -> str | None:
    """The nearest directory of ``path`` that is itself one of ``names`` (a file, a branch)."""
    cut = path.rfind("/")
    while cut > 0:
        if path[:cut] in names:
            return path[:cut]
        cut = path.rfind("/", 0, cut)
    return None


@dataclass(frozen=True)
class _Delta:
    snapshot_id: str
    parent_snapshot_id: str | None
    delta_upsert: dict[str, str]
    delta_remove: list[str]


def _snapshot_deltas(raw: list[Any]) -> list[_Delta]:
    deltas: list[_Delta] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        delta = _snapshot_delta(item, index)
        # A repeated snapshot would be rebuilt and hashed again for nothing.
        if delta.snapshot_id in seen:
            raise MuseError(
                "duplicate_entry", f"snapshots[{index}] repeats a snapshot", delta.snapshot_id
            )
        seen.add(delta.snapshot_id)
        deltas.append(delta)
    return deltas


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
    # Checked here, not by validate_manifest_path: a 100 MiB bin key or a nested array would
    # be rendered whole by repr.
    for path in (*upsert, *remove):
        if not isinstance(path, str):
            raise MuseError("invalid_path", f"{where} holds a non-string path", describe(path))
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
        first = in_pack.setdefault(record.commit_id, record)
        if first is not record and encode_mpack(first.fields) != encode_mpack(record.fields):
            raise MuseError(
                "duplicate_entry",
                f"commits[{index}] repeats a commit with different fields",
                record.commit_id,
            )
    return list(in_pack.values())


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _is_map_or_nil(value: Any) -> bool:
    return value is None or isinstance(value, dict)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# The optional fields of a commit record: the shape each must have, what the refusal says, and
# the value an absent one stands for.
_COMMIT_FIELD_SHAPES: tuple[tuple[str, Callable[[Any], bool], str, Any], ...] = (
    *((name, _is_str, "must be a string", "") for name in _COMMIT_STR_FIELDS),
    ("metadata", _is_str_map, "must map strings to strings", {}),
    ("structured_delta", _is_map_or_nil, "must be a map or nil", None),
    ("breaking_changes", _is_str_list, "must be a list of strings", []),
    ("reviewed_by", _is_str_list, "must be a list of strings", []),
    ("format_version", _is_int, "must be an integer", 0),
    ("test_runs", _is_int, "must be an integer", 0),
)


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
    for name, fits, rule, absent in _COMMIT_FIELD_SHAPES:
        if not fits(item.get(name, absent)):
            raise MuseError("invalid_type", f"{where}.{name} {rule}", cid)
    # The record is stored and served as the client's JSON file: every field, unknown ones
    # included, must be something json.dumps writes and json.loads reads back unchanged.
    problem = _json_problem(item, 0)
    if problem is not None:
        raise MuseError("invalid_type", f"{where} {problem}, which JSON cannot hold", cid)
    return CommitRecord.from_dict(item)


def _json_problem(value: Any, depth: int) -> str | None:
    """What in ``value`` the client's JSON commit file could not hold, or None."""
    if isinstance(value, dict):
        if depth >= MAX_JSON_DEPTH:
            return f"nests more than {MAX_JSON_DEPTH} maps and arrays"
        for key, item in value.items():
            if not isinstance(key, str):
                return f"has a {type(key).__name__} map key"
            if not isinstance(item, _JSON_SCALARS) and (found := _json_problem(item, depth + 1)):
                return found
    elif isinstance(value, list):
        if depth >= MAX_JSON_DEPTH:
            return f"nests more than {MAX_JSON_DEPTH} maps and arrays"
        for item in value:
            if not isinstance(item, _JSON_SCALARS) and (found := _json_problem(item, depth + 1)):
                return found
    elif not isinstance(value, _JSON_SCALARS):
        return f"holds a {type(value).__name__} value"
    return None


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
            raise MuseError("invalid_id", f"head of branch {branch!r} is not an id", describe(head))
        heads[branch] = head
    _refuse_nested_branches(heads)
    in_pack = {c.commit_id for c in commits}
    outside = set(heads.values()) - in_pack
    missing = outside - receiver.known_commits(outside) if outside else set()
    for branch, head in heads.items():
        if head in missing:
            raise MuseError(
                "missing_commit", f"head of branch {branch!r} is neither sent nor held", head
            )
    return heads


def _refuse_nested_branches(heads: Mapping[str, str]) -> None:
    """``a`` and ``a/b`` cannot both be branches: ``refs/heads/a`` would be a file and a
    directory."""
    for branch in heads:
        parent = _file_parent(branch, heads)
        if parent is not None:
            raise MuseError(
                "invalid_branch_name",
                f"branch {parent!r} is also a directory of branch {branch!r}",
                parent,
            )
