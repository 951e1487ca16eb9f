"""Push one branch of a local repository: refs, the smallest mpack (or several, each within the
server's limits), presigned upload, ingestion."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from functools import partial
from mmap import ACCESS_READ, mmap
from pathlib import Path
from typing import IO, Any

from muse_cloud_cli.client import ClientError, MuseCloudClient, Remote
from muse_cloud_cli.errors import CliError
from muse_cloud_cli.fetch import is_local_ancestor
from muse_cloud_cli.progress import Reporter, plural, short
from muse_cloud_cli.upload import upload_pack
from muse_core.commits import has_commit
from muse_core.limits import DEFAULT_LIMITS, Limits
from muse_core.mpack import build_mpack, mpack_key
from muse_core.paths import muse_dir
from muse_core.refs import read_branch_ref, read_head
from muse_core.split import PlannedPack, split_push, write_planned

PUSH_WAIT_SECONDS = 900.0


@dataclass(frozen=True)
class PreparedPush:
    """The pack for one branch, built against what the server already has."""

    branch: str
    head: str
    server_head: str | None
    have: list[str]
    # The pack's fields, each object by its id alone; and its encoded bytes.
    pack: dict[str, Any]
    data: bytes | mmap
    build_seconds: float

    @property
    def key(self) -> str:
        return mpack_key(self.data)

    @property
    def up_to_date(self) -> bool:
        return self.server_head == self.head


@dataclass(frozen=True)
class PushResult:
    prepared: PreparedPush
    answer: dict[str, Any]
    upload_seconds: float
    ingest_seconds: float


def current_branch(root: Path) -> str:
    kind, value = read_head(root)
    if kind != "ref":
        raise CliError("detached_head", f"HEAD is detached at {value}; push with --branch")
    return value


def prepare_push(
    client: MuseCloudClient,
    remote: Remote,
    root: Path,
    branch: str | None = None,
    *,
    force: bool = False,
    reporter: Reporter | None = None,
) -> PreparedPush:
    """Check what the server says before building anything: that the caller may push, and
    (unless ``force``) that the push only adds to the remote branch; then build the pack."""
    reporter = reporter or Reporter(quiet=True)
    target = _push_target(client, remote, root, branch, force, reporter)
    started = time.perf_counter()
    with reporter.phase(f"building the pack of {target.branch}"):
        pack, data = _written_pack(
            lambda out: build_mpack(root, {target.branch: target.head}, target.have, out=out)
        )
    return PreparedPush(
        target.branch,
        target.head,
        target.server_head,
        target.have,
        pack,
        data,
        time.perf_counter() - started,
    )


@dataclass(frozen=True)
class _Target:
    """A branch to push, its local head, and what the server holds."""

    branch: str
    head: str
    server_head: str | None
    have: list[str]
    # What one pack may hold on this server (its refs answer says), else the protocol's.
    limits: Limits


def _push_target(
    client: MuseCloudClient,
    remote: Remote,
    root: Path,
    branch: str | None,
    force: bool,
    reporter: Reporter,
) -> _Target:
    if not muse_dir(root).is_dir():
        raise CliError("not_a_repository", f"{root} has no .muse directory")
    branch = branch or current_branch(root)
    head = read_branch_ref(root, branch)
    if head is None:
        raise CliError("nothing_to_push", f"branch {branch!r} has no commits")
    with reporter.phase("reading the remote's refs"):
        refs = client.refs(remote.owner, remote.name)
    server_heads: dict[str, str] = refs["branch_heads"]
    if refs.get("permissions", {}).get("push") is False:
        who = client.key.handle if client.key is not None else "an anonymous caller"
        raise CliError("forbidden", f"{who!r} may not push to {remote.owner}/{remote.name}")
    server_head = server_heads.get(branch)
    if server_head is not None and not force and not is_local_ancestor(root, server_head, head):
        raise CliError(
            "non_fast_forward",
            f"rejected: {remote.url} has commits on {branch} that you lack "
            f"({server_head[:8]}); fetch first, or push with --force to replace them",
        )
    # Only heads the local history holds can be left out of the pack; the rest are unknown here.
    have = sorted({h for h in server_heads.values() if has_commit(root, h)})
    return _Target(branch, head, server_head, have, _pack_limits(refs.get("pack_limits")))


def _pack_limits(advertised: Any) -> Limits:
    """The server's limits as its refs answer gives them; a field it leaves out (an older
    server gives none) keeps the protocol's default."""
    if not isinstance(advertised, dict):
        return DEFAULT_LIMITS
    known = {f.name for f in fields(Limits)}
    return replace(
        DEFAULT_LIMITS,
        **{k: v for k, v in advertised.items() if k in known and type(v) is int and v > 0},
    )


@dataclass(frozen=True)
class SplitPush:
    """A push cut into consecutive packs (``muse_core.split``), each built when it is sent."""

    root: Path
    target: _Target
    packs: list[PlannedPack]

    @property
    def branch(self) -> str:
        return self.target.branch

    @property
    def head(self) -> str:
        return self.target.head

    @property
    def up_to_date(self) -> bool:
        return self.target.server_head == self.target.head


def plan_push(
    client: MuseCloudClient,
    remote: Remote,
    root: Path,
    branch: str | None = None,
    *,
    force: bool = False,
    reporter: Reporter | None = None,
    budget: Limits | None = None,
) -> SplitPush:
    """``prepare_push``'s checks, then the packs to send, each within ``budget`` (by default the
    limits the server gives) where one commit's share of the history allows."""
    reporter = reporter or Reporter(quiet=True)
    target = _push_target(client, remote, root, branch, force, reporter)
    if target.server_head == target.head:
        return SplitPush(root, target, [])
    with reporter.phase(f"measuring what {target.branch} adds"):
        packs = split_push(root, target.head, target.have, budget or target.limits)
    return SplitPush(root, target, packs)


def send_split(
    client: MuseCloudClient,
    remote: Remote,
    split: SplitPush,
    *,
    force: bool = False,
    reporter: Reporter | None = None,
    on_pack: Callable[[PushResult], None] = lambda _: None,
) -> list[PushResult]:
    """Send the packs in order, each through presign, upload and ingestion, each moving the
    branch once; only the first may be a forced move (the rest are fast-forwards of it).

    ``on_pack`` is told of each pack the server took. When one fails, the branch stands where
    the pack before it left it, which the error names; pushing again sends the rest.
    """
    reporter = reporter or Reporter(quiet=True)
    target = split.target
    results: list[PushResult] = []
    count = len(split.packs)
    standing = target.server_head
    for number, planned in enumerate(split.packs, start=1):
        reporter.label = f"pack {number} of {count}: " if count > 1 else ""
        try:
            result = _send_planned(
                client, remote, split, planned, standing, force and number == 1, reporter
            )
        except CliError as error:
            if not results:
                raise
            raise CliError(
                "push_incomplete",
                f"pack {number} of {count} failed ({error.code}: {error.message}); "
                f"{target.branch} on {remote.url} stands at {short(standing)}, where pack "
                f"{number - 1} left it; push again to send the rest",
            ) from error
        finally:
            reporter.label = ""
        standing = planned.head
        results.append(result)
        on_pack(result)
    return results


def _send_planned(
    client: MuseCloudClient,
    remote: Remote,
    split: SplitPush,
    planned: PlannedPack,
    standing: str | None,
    force: bool,
    reporter: Reporter,
) -> PushResult:
    """One pack of a split push, built now and sent; ``standing`` is where the branch is."""
    started = time.perf_counter()
    with reporter.phase(f"building the pack of {split.branch}"):
        pack, data = _written_pack(partial(write_planned, split.root, split.branch, planned))
    prepared = PreparedPush(
        split.branch,
        planned.head,
        standing,
        split.target.have,
        pack,
        data,
        time.perf_counter() - started,
    )
    return send_push(client, remote, prepared, force=force, reporter=reporter)


def _written_pack(write: Callable[[IO[bytes]], dict[str, Any]]) -> tuple[dict[str, Any], mmap]:
    """The pack ``write`` writes, to a temporary file, mapped: hashing and uploading read it
    from there, and no step holds all of its objects in memory."""
    with tempfile.TemporaryFile() as spool:
        pack = write(spool)
        spool.flush()
        return pack, mmap(spool.fileno(), 0, access=ACCESS_READ)


def send_push(
    client: MuseCloudClient,
    remote: Remote,
    prepared: PreparedPush,
    *,
    force: bool = False,
    reporter: Reporter | None = None,
) -> PushResult:
    """Upload the pack and have the server ingest it; its refusals raise ``ClientError``."""
    reporter = reporter or Reporter(quiet=True)
    key = prepared.key
    started = time.perf_counter()
    ticket = client.presign(
        remote.owner,
        remote.name,
        key,
        len(prepared.data),
        branch=prepared.branch,
        head=prepared.head,
        force=force,
        multipart=True,
    )
    if ticket.get("status") not in ("ok", "processing"):
        upload_pack(client, remote, ticket, prepared.data, progress=reporter.enabled)
    uploaded = time.perf_counter()
    commits = len(prepared.pack["commits"])
    try:
        with reporter.phase(f"the server is verifying and writing {plural(commits, 'commit')}"):
            answer = client.unpack(
                remote.owner, remote.name, key, prepared.branch, prepared.head, force
            )
    except ClientError as error:
        if error.code != "push_in_progress" and error.status not in (502, 503, 504):
            raise
        # The event path has the pack, or the gateway gave up waiting: the record will tell.
        answer = wait_for_push(client, remote, ticket["push_id"], reporter=reporter)
    _require_this_move(prepared, answer, force)
    return PushResult(
        prepared=prepared,
        answer=answer,
        upload_seconds=uploaded - started,
        ingest_seconds=time.perf_counter() - uploaded,
    )


def _require_this_move(prepared: PreparedPush, answer: dict[str, Any], force: bool) -> None:
    """The server answers a pack it ingested before with that ingestion's recorded result: only
    a move of this branch to this head, made as forced as asked, is this push's."""
    moved = {u.get("branch"): u.get("head") for u in answer.get("updates") or []}
    if moved.get(prepared.branch) != prepared.head or bool(answer.get("force")) != force:
        raise CliError(
            "push_not_applied",
            f"the server reports an earlier push of this pack, not a move of "
            f"{prepared.branch!r} to {prepared.head} for this one; push again",
        )


def wait_for_push(
    client: MuseCloudClient,
    remote: Remote,
    push_id: str,
    timeout: float = PUSH_WAIT_SECONDS,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Poll the push record until ingestion ends; a refusal raises like unpack-mpack's would."""
    reporter = reporter or Reporter(quiet=True)
    with reporter.phase(f"waiting for push {push_id[:8]}") as show:
        return _poll_push(client, remote, push_id, timeout, show)


def _poll_push(
    client: MuseCloudClient,
    remote: Remote,
    push_id: str,
    timeout: float,
    show: Callable[[str], None],
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        record = client.push_status(remote.owner, remote.name, push_id)
        show(f"waiting for push {push_id[:8]}: {record['status']}")
        if record["status"] == "ok":
            return record
        if record["status"] == "failed":
            error = record.get("error") or {}
            raise ClientError(
                int(error.get("http_status", 422)),
                str(error.get("code", "push_failed")),
                str(error.get("message", "the push was refused")),
                error.get("item"),
            )
        if time.monotonic() > deadline:
            raise ClientError(
                0, "push_timeout", f"ingestion had not finished after {timeout:.0f} s", push_id
            )
        time.sleep(delay)
        delay = min(delay * 2, 5.0)
