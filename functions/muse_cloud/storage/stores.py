"""Every store of one deployment, built over one table and one bucket, and the bus its push
events go to."""

from __future__ import annotations

from dataclasses import dataclass

from muse_cloud.storage.answers import AnswerStore
from muse_cloud.storage.backend import Bucket, Table
from muse_cloud.storage.bus import EventBus, MemoryBus
from muse_cloud.storage.collaborators import CollaboratorStore
from muse_cloud.storage.commits import CommitStore
from muse_cloud.storage.cursors import CursorStore
from muse_cloud.storage.events import EventStore
from muse_cloud.storage.fetch_packs import FetchPackStore
from muse_cloud.storage.gc_hold import GcHolds
from muse_cloud.storage.identities import IdentityStore
from muse_cloud.storage.pack_index import PackIndex
from muse_cloud.storage.packs import PackStore
from muse_cloud.storage.protection import ProtectionStore
from muse_cloud.storage.pushes import PushStore
from muse_cloud.storage.quotas import QuotaStore
from muse_cloud.storage.refs import RefStore
from muse_cloud.storage.releases import ReleaseStore
from muse_cloud.storage.repos import RepoStore
from muse_cloud.storage.snapshots import SnapshotStore
from muse_cloud.storage.staging import StagingStore
from muse_cloud.storage.tokens import TokenStore
from muse_cloud.storage.values import LargeValues


@dataclass(frozen=True)
class Stores:
    table: Table
    bucket: Bucket
    repos: RepoStore
    collaborators: CollaboratorStore
    refs: RefStore
    commits: CommitStore
    snapshots: SnapshotStore
    pack_index: PackIndex
    packs: PackStore
    pushes: PushStore
    identities: IdentityStore
    tokens: TokenStore
    releases: ReleaseStore
    staging: StagingStore
    answers: AnswerStore
    cursors: CursorStore
    fetch_packs: FetchPackStore
    protection: ProtectionStore
    events: EventStore
    bus: EventBus
    gc_holds: GcHolds
    quotas: QuotaStore

    @classmethod
    def over(
        cls,
        table: Table,
        bucket: Bucket,
        upload_expiry_seconds: int = 300,
        download_expiry_seconds: int = 300,
        bus: EventBus | None = None,
    ) -> Stores:
        """``bus``: where push events are published (default: a list in memory)."""
        values = LargeValues(bucket)
        packs = PackStore(bucket, upload_expiry_seconds, download_expiry_seconds)
        pushes = PushStore(table)
        return cls(
            table=table,
            bucket=bucket,
            repos=RepoStore(table),
            collaborators=CollaboratorStore(table),
            refs=RefStore(table),
            commits=CommitStore(table, values),
            snapshots=SnapshotStore(table, values),
            pack_index=PackIndex(table, bucket),
            packs=packs,
            pushes=pushes,
            identities=IdentityStore(table),
            tokens=TokenStore(table),
            releases=ReleaseStore(table),
            staging=StagingStore(bucket),
            answers=AnswerStore(packs),
            cursors=CursorStore(table, values),
            fetch_packs=FetchPackStore(bucket),
            protection=ProtectionStore(table),
            events=EventStore(table),
            bus=bus or MemoryBus(),
            gc_holds=pushes.gc_holds,
            quotas=QuotaStore(table),
        )
