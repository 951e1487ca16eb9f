"""Clone: fetch every head as one mpack, verify it, and write a repository the client can read."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

from muse_cloud_cli.client import MuseCloudClient, Remote
from muse_cloud_cli.errors import CliError
from muse_cloud_cli.progress import Reporter
from muse_cloud_cli.remotes import DEFAULT_REMOTE, set_remote, write_tracking
from muse_core.commits import read_commit, write_commit
from muse_core.errors import MuseError
from muse_core.limits import DEFAULT_LIMITS
from muse_core.object_store import ObjectWriter, read_object
from muse_core.refs import DEFAULT_BRANCH, heads_dir, write_branch_ref, write_head
from muse_core.repo import init_repo
from muse_core.snapshots import SnapshotChainWriter, read_snapshot
from muse_core.verify import EmptyReceiver, VerifiedMpack, verify_mpack

# A clone holds a whole repository, which the server may have received over many pushes: the
# per-push bounds on branches and on rebuilding work do not apply to it.
CLONE_LIMITS = replace(DEFAULT_LIMITS, max_branch_heads=1_000_000, max_rebuilt_entries=10**13)
_UNWRITABLE_NAMES = ("invalid_path", "invalid_branch_name")


@dataclass(frozen=True)
class CloneResult:
    dest: Path
    default_branch: str
    branch_heads: dict[str, str]
    pack_bytes: int
    commits: int
    snapshots: int
    objects: int
    files: int
    fetch_seconds: float
    download_seconds: float
    verify_seconds: float
    write_seconds: float

    @property
    def total_seconds(self) -> float:
        return self.fetch_seconds + self.download_seconds + self.verify_seconds + self.write_seconds


def clone_repo(
    client: MuseCloudClient, remote: Remote, dest: Path, *, reporter: Reporter | None = None
) -> CloneResult:
    """Clone ``remote`` into ``dest`` (missing or empty); a failed clone leaves it as it was."""
    existed = dest.exists()
    if existed and (not dest.is_dir() or any(dest.iterdir())):
        raise CliError("destination_exists", f"{dest} exists and is not an empty directory")
    try:
        return _clone(client, remote, dest, reporter or Reporter(quiet=True))
    except BaseException:
        if existed:
            for child in dest.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        else:
            shutil.rmtree(dest, ignore_errors=True)
        raise


def _clone(client: MuseCloudClient, remote: Remote, dest: Path, reporter: Reporter) -> CloneResult:
    refs = client.refs(remote.owner, remote.name)
    default_branch: str = refs.get("default_branch") or DEFAULT_BRANCH
    dest.mkdir(parents=True, exist_ok=True)
    init_repo(dest, repo_id=refs["repo_id"], domain=refs.get("domain") or "code")
    pack_bytes = 0
    pack: VerifiedMpack | None = None
    started = fetched = downloaded = verified = time.perf_counter()
    if refs["branch_heads"]:
        # No wants: the server packs every branch at its heads as it reads them then, and names
        # them in the pack. Wanting the heads read above would lose any branch that moved since.
        with reporter.phase("the server is building the pack"):
            ticket = client.fetch(remote.owner, remote.name, want=[], have=[])
        fetched = time.perf_counter()
        data = client.download(ticket["download_url"], progress=reporter.enabled)
        downloaded = time.perf_counter()
        pack_bytes = len(data)

        try:
            # Nothing is held yet, so the pack must be complete; objects go to disk as they
            # stream past, and only once their bytes hash to their id.
            with reporter.phase(f"verifying {pack_bytes:,} bytes"):
                pack = verify_mpack(
                    data,
                    EmptyReceiver(),
                    expected_key=ticket["mpack_key"],
                    limits=CLONE_LIMITS,
                    object_sink=ObjectWriter(dest),
                )
        except MuseError as error:
            if error.code in _UNWRITABLE_NAMES:
                # Stored before the rule refused it at push time: nothing here can write it.
                message = (
                    f"the repository holds a name no checkout can write: {error.message} "
                    f"({error.item})"
                )
                raise CliError(error.code, message) from None
            raise CliError(error.code, f"the server sent a bad pack: {error.message}") from None
        verified = time.perf_counter()
        with reporter.phase(f"writing {len(pack.commits):,} commits"):
            _write_history(dest, pack)
    heads = pack.branch_heads if pack is not None else {}
    if heads or default_branch != DEFAULT_BRANCH:
        # init_repo's empty main ref only stands for the branch of an empty repository: it
        # would claim a branch the server may not have, and as a file it would keep a branch
        # named main/<x> from being written. An empty clone keeps it, as `muse init` does.
        (heads_dir(dest) / DEFAULT_BRANCH).unlink(missing_ok=True)
    # Verification refused heads that nest ("a" beside "a/b"), which could not both be files.
    for branch, head in sorted(heads.items()):
        write_branch_ref(dest, branch, head)
    write_head(dest, default_branch)
    set_remote(dest, DEFAULT_REMOTE, remote.url, branch=default_branch)
    write_tracking(dest, DEFAULT_REMOTE, heads)
    with reporter.phase("checking out"):
        files = _check_out(dest, heads[default_branch]) if default_branch in heads else 0
    done = time.perf_counter()
    return CloneResult(
        dest=dest,
        default_branch=default_branch,
        branch_heads=dict(heads),
        pack_bytes=pack_bytes,
        commits=len(pack.commits) if pack else 0,
        snapshots=len(pack.snapshots) if pack else 0,
        objects=len(pack.objects) if pack else 0,
        files=files,
        fetch_seconds=fetched - started,
        download_seconds=downloaded - fetched,
        verify_seconds=verified - downloaded,
        write_seconds=done - verified,
    )


def _write_history(dest: Path, pack: VerifiedMpack) -> None:
    """Commits as sent, and every snapshot rebuilt to the full manifest the format stores."""
    created_at: dict[str, str] = {}
    for commit in pack.commits:
        write_commit(dest, commit)
        # The pack does not carry a snapshot's created_at (it is not hashed); its commit's time
        # is what the client would have written.
        created_at.setdefault(commit.snapshot_id, commit.committed_at)
    # Bases come before their deltas: the previous snapshot is almost always the next base, and
    # any other base was written to disk already.
    snapshots = SnapshotChainWriter(dest)
    for snapshot in pack.snapshots:
        snapshots.write(
            snapshot.snapshot_id,
            snapshot.parent_snapshot_id,
            snapshot.delta_upsert,
            snapshot.delta_remove,
            created_at.get(snapshot.snapshot_id, ""),
        )


def _check_out(dest: Path, head: str) -> int:
    manifest = read_snapshot(dest, read_commit(dest, head).snapshot_id).manifest
    # Verification refused every path a checkout cannot write or that reaches into .muse.
    for path, object_id in sorted(manifest.items()):
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read_object(dest, object_id))
    return len(manifest)
