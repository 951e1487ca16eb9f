"""The composition root: settings, clients, stores and services, built in this one place.

A Lambda sandbox builds them once, at its cold start (``cold_start``), and every invocation it
serves reuses them, as boto3 clients are meant to be reused. Tests and the local stack, which
point one process at fresh moto stacks in turn, call ``cold_start.reset()`` to build anew.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import boto3
from botocore.config import Config

from muse_cloud.config import Settings
from muse_cloud.domain.quotas import Quota
from muse_cloud.services.access import RepoAccessService
from muse_cloud.services.branches import BranchService
from muse_cloud.services.events import EventService
from muse_cloud.services.fetch import FetchService
from muse_cloud.services.gc import GarbageCollector
from muse_cloud.services.history import HistoryService
from muse_cloud.services.identities import IdentityService
from muse_cloud.services.ingest import IngestService
from muse_cloud.services.push import SYNC_LEASE_SECONDS, PushService
from muse_cloud.services.quotas import QuotaService
from muse_cloud.services.releases import ReleaseService
from muse_cloud.services.repos import RepoService
from muse_cloud.services.tokens import TokenService
from muse_cloud.services.wire_v0 import WireV0Service
from muse_cloud.storage.bus import EventBridgeBus
from muse_cloud.storage.dynamo import DynamoTable
from muse_cloud.storage.memory import MemoryBucket, MemoryTable
from muse_cloud.storage.requests import count_requests
from muse_cloud.storage.s3 import S3Bucket
from muse_cloud.storage.stores import Stores
from muse_cloud.telemetry import logger, record_push_metrics
from muse_core.collection import collection_paused

# Endpoints come from boto3's own ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>``
# variables, which is how the local stack points the same code at moto. Parameters are not
# validated on the client: the stores build every request from typed values, the services
# refuse a bad request before it is sent, and the check cost about a tenth of each write's CPU
# (a 25-item BatchWriteItem walked item by item); AWS validates them anyway.
CLIENT_CONFIG = Config(
    signature_version="s3v4",
    retries={"max_attempts": 5, "mode": "standard"},
    max_pool_connections=32,
    parameter_validation=False,
)


@dataclass(frozen=True)
class Services:
    settings: Settings
    stores: Stores
    access: RepoAccessService
    repos: RepoService
    identities: IdentityService
    tokens: TokenService
    ingest: IngestService
    push: PushService
    history: HistoryService
    fetch: FetchService
    wire_v0: WireV0Service
    releases: ReleaseService
    branches: BranchService
    events: EventService
    gc: GarbageCollector
    quotas: QuotaService

    @classmethod
    def of(cls, settings: Settings, stores: Stores) -> Services:
        access = RepoAccessService(stores.repos, stores.collaborators)
        quotas = QuotaService(
            stores.quotas,
            access,
            Quota(settings.repo_max_bytes, settings.repo_pushes_per_minute),
            Quota(settings.owner_max_bytes, settings.owner_pushes_per_minute),
        )
        push = PushService(
            stores,
            access,
            IngestService(
                stores,
                limits=settings.pack_limits,
                lease_seconds=SYNC_LEASE_SECONDS,
                on_finish=record_push_metrics,
                on_stored=quotas.count_stored,
            ),
            quotas,
            max_upload_bytes=settings.max_upload_bytes,
            multipart_threshold_bytes=settings.multipart_threshold_bytes,
            part_bytes=settings.multipart_part_bytes,
        )
        return cls(
            settings=settings,
            stores=stores,
            access=access,
            repos=RepoService(stores, access),
            identities=IdentityService(stores.identities),
            tokens=TokenService(stores.tokens),
            ingest=IngestService(
                stores,
                limits=settings.pack_limits,
                on_finish=record_push_metrics,
                on_stored=quotas.count_stored,
            ),
            push=push,
            history=HistoryService(stores, access, settings.inline_object_bytes),
            fetch=FetchService(stores, access, settings.fetch_build_seconds),
            wire_v0=WireV0Service(stores, access, push),
            releases=ReleaseService(stores, access),
            branches=BranchService(stores, access),
            events=EventService(stores, access),
            gc=GarbageCollector(stores, access, settings.gc_grace_seconds),
            quotas=quotas,
        )

    @classmethod
    def on_aws(cls, settings: Settings | None = None) -> Services:
        """Over DynamoDB and S3, with every request counted (``storage.requests``)."""
        settings = settings or Settings()  # type: ignore[call-arg]
        dynamodb = count_requests(boto3.client("dynamodb", config=CLIENT_CONFIG))
        s3 = count_requests(boto3.client("s3", config=CLIENT_CONFIG))
        stores = Stores.over(
            DynamoTable(dynamodb, settings.table_name),
            S3Bucket(s3, settings.bucket_name),
            settings.presign_expiry_seconds,
            settings.download_expiry_seconds,
            EventBridgeBus(boto3.client("events", config=CLIENT_CONFIG), settings.event_bus_name),
        )
        services = cls.of(settings, stores)
        if settings.bootstrap_admin_public_key:
            services.register_bootstrap_admin()
        return services

    def register_bootstrap_admin(self) -> None:
        """The deploy-time first admin (a no-op once registered). A failure is logged, not
        raised: a rotated key (``handle_taken``) or a bad one would otherwise fail every
        request, and the first admin is not needed to serve them."""
        try:
            self.identities.ensure_bootstrap_admin(self.settings.bootstrap_admin_public_key)
        except Exception as error:
            logger.warning("bootstrap admin not registered", error=str(error), exc_info=True)

    @classmethod
    def in_memory(cls, settings: Settings | None = None) -> Services:
        """Over a dictionary table and bucket (and a list of events): the service layer
        without AWS."""
        settings = settings or Settings(
            table_name="memory", bucket_name="memory", event_bus_name="memory"
        )
        return cls.of(settings, Stores.over(MemoryTable(), MemoryBucket(settings.bucket_name)))


Built = TypeVar("Built")


class ColdStart(Generic[Built]):
    """What one sandbox builds on its first invocation and keeps."""

    # Whether a build in this process has frozen what it found (``gc.freeze``).
    frozen = False

    def __init__(self, build: Callable[[], Built]) -> None:
        self._build = build
        self._built: Built | None = None

    def get(self) -> Built:
        if self._built is None:
            # What the build makes (botocore's service models, the clients) lives as long as
            # the sandbox, as what the handler's import made does (``muse_cloud.handlers``):
            # the cyclic collector is paused while it is built, and the first build in a
            # process moves it all out of the collector's generations, so that the collections
            # an invocation's allocations trigger no longer walk it (on in-process moto they
            # took a fifth of a seed ingestion). Once per process: the local stack and the
            # tests build again, and garbage frozen then would never be collected.
            with collection_paused():
                self._built = self._build()
                if not ColdStart.frozen:
                    ColdStart.frozen = True
                    gc.freeze()
        return self._built

    def reset(self) -> None:
        self._built = None


cold_start: ColdStart[Services] = ColdStart(Services.on_aws)
