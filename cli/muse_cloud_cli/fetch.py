"""Fetch and pull: ask for what the local repository lacks, verify it as a clone does, move the
remote-tracking heads; pull then fast-forwards the current branch and its checkout."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from muse_cloud_cli.client import MuseCloudClient, Remote
from muse_cloud_cli.clone import CLONE_LIMITS, _write_history
from muse_cloud_cli.compare import check_worktree
from muse_cloud_cli.errors import CliError
from muse_cloud_cli.progress import Reporter
from muse_cloud_cli.remotes import read_tracking, write_tracking
from muse_core.commits import has_commit, read_commit
from muse_core.errors import MuseError
from muse_core.mpack import LocalHistory, walk_commits
from muse_core.object_store import ObjectWriter, has_object, read_object
from muse_core.paths import muse_dir
from muse_core.refs import list_branches, read_branch_ref, write_branch_ref
from muse_core.snapshots import has_snapshot, read_snapshot
from muse_core.verify import verify_mpack

# The server takes at most this many ids in ``have``.
MAX_HAVES = 1_000


class LocalReceiver:
    """A local repository as verification's receiver: a fetched pack may build on its history."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def known_objects(self, object_ids: Collection[str]) -> set[str]:
        return {o for o in object_ids if has_object(self.root, o)}

    def known_snapshots(self, snapshot_ids: Collection[str]) -> set[str]:
        return {s for s in snapshot_ids if has_snapshot(self.root, s)}

    def known_commits(self, commit_ids: Collection[str]) -> set[str]:
        return {c for c in commit_ids if has_commit(self.root, c)}

    def snapshot_manifest(self, snapshot_id: str) -> dict[str, str] | None:
        if not has_snapshot(self.root, snapshot_id):
            return None
        return read_snapshot(self.root, snapshot_id).manifest


@dataclass(frozen=True)
class TrackingMove:
    branch: str
    previous: str | None
    head: str | None


@dataclass
class FetchResult:
    heads: dict[str, str]
    moves: list[TrackingMove] = field(default_factory=list)
    commits: int = 0
    pack_bytes: int = 0


def is_local_ancestor(root: Path, ancestor: str, descendant: str) -> bool:
    """Whether the local history shows ``ancestor`` reachable from ``descendant``."""
    if ancestor == descendant:
        return True
    if not (has_commit(root, ancestor) and has_commit(root, descendant)):
        return False
    # Found in the first steps of the walk when it is a recent ancestor, as a pushed head is.
    return any(ancestor in found for found in walk_commits(LocalHistory(root), [descendant]))


def fetch_remote(
    client: MuseCloudClient, remote: Remote, root: Path, name: str, reporter: Reporter
) -> FetchResult:
    """Bring in every branch of ``remote`` and make the tracking heads of ``name`` match it."""
    if not muse_dir(root).is_dir():
        raise CliError("not_a_repository", f"{root} has no .muse directory")
    before = read_tracking(root, name)
    with reporter.phase("reading the remote's refs"):
        server_heads: dict[str, str] = client.refs(remote.owner, remote.name)["branch_heads"]
    result = FetchResult(heads=dict(server_heads))
    if any(not has_commit(root, head) for head in server_heads.values()):
        known = {*list_branches(root).values(), *before.values()}
        have = sorted(h for h in known if has_commit(root, h))[:MAX_HAVES]
        with reporter.phase("the server is building the pack"):
            # No wants: every branch at its head as the server reads it now, named in the pack.
            ticket = client.fetch(remote.owner, remote.name, want=[], have=have)
        data = client.download(ticket["download_url"], progress=reporter.enabled)
        result.pack_bytes = len(data)

        with reporter.phase(f"verifying {len(data):,} bytes"):
            try:
                pack = verify_mpack(
                    data,
                    LocalReceiver(root),
                    expected_key=ticket["mpack_key"],
                    limits=CLONE_LIMITS,
                    object_sink=ObjectWriter(root),
                )
            except MuseError as error:
                raise CliError(error.code, f"the server sent a bad pack: {error.message}") from None
        with reporter.phase(f"writing {len(pack.commits):,} commits"):
            _write_history(root, pack)
        result.heads = dict(pack.branch_heads)
        result.commits = len(pack.commits)
    write_tracking(root, name, result.heads)
    for branch in sorted({*before, *result.heads}):
        if before.get(branch) != result.heads.get(branch):
            result.moves.append(TrackingMove(branch, before.get(branch), result.heads.get(branch)))
    return result


@dataclass(frozen=True)
class PullOutcome:
    branch: str
    previous: str | None
    head: str
    files: int

    @property
    def moved(self) -> bool:
        return self.previous != self.head


def fast_forward(
    root: Path, branch: str, remote_name: str, target: str | None, *, checked_out: bool
) -> PullOutcome:
    """Move ``branch`` to ``target`` when that only adds commits; the working tree follows when
    ``branch`` is the one ``checked_out``."""
    if target is None:
        raise CliError("no_such_branch", f"{remote_name} has no branch {branch!r}")
    local = read_branch_ref(root, branch)
    if local is not None and is_local_ancestor(root, target, local):
        return PullOutcome(branch, local, local, 0)
    if local is not None and not is_local_ancestor(root, local, target):
        raise CliError(
            "diverged",
            f"{branch} and {remote_name}/{branch} have diverged; merge them with the Muse "
            f"client (`muse merge {remote_name}/{branch}`), then push",
        )
    files = check_out_move(root, local, target) if checked_out else 0
    write_branch_ref(root, branch, target)
    return PullOutcome(branch, local, target, files)


def check_out_move(root: Path, old: str | None, new: str) -> int:
    """Update the working tree from ``old``'s files to ``new``'s, refusing before any write if
    that would lose a change: a tracked file edited or removed, an untracked file in the way."""
    before = read_snapshot(root, read_commit(root, old).snapshot_id).manifest if old else {}
    after = read_snapshot(root, read_commit(root, new).snapshot_id).manifest
    changed = check_worktree(root, before)
    if changed:
        raise CliError(
            "local_changes",
            f"{changed[0]} differs from the last commit ({len(changed)} file(s)); commit or "
            "restore them before pulling",
        )
    for path, object_id in sorted(after.items()):
        target = root / path
        if path.split("/", 1)[0].lower() == muse_dir(root).name:
            raise CliError("unsafe_path", f"the manifest names a path inside .muse: {path}")
        in_the_way = path not in before and target.exists()
        if in_the_way and (
            not target.is_file() or target.read_bytes() != read_object(root, object_id)
        ):
            raise CliError("untracked_file", f"{path} is not tracked and would be overwritten")
    for path in sorted(set(before) - set(after)):
        (root / path).unlink()
        parent = (root / path).parent
        while parent != root and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    for path, object_id in sorted(after.items()):
        if before.get(path) != object_id:
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(read_object(root, object_id))
    return len(after)
