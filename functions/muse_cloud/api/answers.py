"""What the API answers, as typed models: the OpenAPI document is generated from them, and each
is built from a domain record in one place.

Field names are the protocol's (snake case), except a repository, which the protocol and MuseHub
answer in camel case (``repoId``, ``defaultBranch``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from muse_cloud.api.models import Model
from muse_cloud.api.statuses import status_of
from muse_cloud.domain.events import PushEvent
from muse_cloud.domain.identities import Caller
from muse_cloud.domain.protection import Protection
from muse_cloud.domain.pushes import PushRecord
from muse_cloud.domain.quotas import Usage
from muse_cloud.domain.repos import Repo
from muse_cloud.domain.roles import Role
from muse_cloud.services.events import RecentEvents
from muse_cloud.services.history import BranchHeads
from muse_cloud.services.push import PartsUpload, PresignedPush
from muse_cloud.services.tokens import CreatedToken
from muse_core.limits import Limits


def _is_none(value: object) -> bool:
    return value is None


def omitted_when_none(description: str | None = None) -> Any:
    """A field left out of the answer rather than sent as null: a key's absence means
    something to clients (no ``permissions`` for an anonymous caller)."""
    return Field(default=None, exclude_if=_is_none, description=description)


class ErrorAnswer(Model):
    """Every refusal: a stable code, a message, and the offending item."""

    code: str
    message: str
    item: str | None = None


class RepoAnswer(Model):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    repo_id: str
    # As on MuseHub: the seed client builds /{owner}/{slug}/... paths from it.
    slug: str
    full_name: str
    owner: str
    name: str
    visibility: str
    default_branch: str
    domain: str
    created_at: str

    @classmethod
    def of(cls, repo: Repo) -> RepoAnswer:
        return cls(
            repo_id=repo.repo_id,
            slug=repo.name,
            full_name=repo.full_name,
            owner=repo.owner,
            name=repo.name,
            visibility=repo.visibility,
            default_branch=repo.default_branch,
            domain=repo.domain,
            created_at=repo.created_at,
        )


class CollaboratorsAnswer(Model):
    collaborators: dict[str, Role]


class CollaboratorAnswer(Model):
    handle: str
    role: Role


class IdentityAnswer(Model):
    """An identity as registered (its key is the caller's own to know)."""

    model_config = ConfigDict(from_attributes=True)

    identity_id: str
    handle: str
    is_admin: bool
    is_agent: bool


class CallerAnswer(Model):
    handle: str | None
    identity_id: str | None
    is_admin: bool
    is_agent: bool
    anonymous: bool

    @classmethod
    def of(cls, caller: Caller) -> CallerAnswer:
        return cls(
            handle=caller.handle,
            identity_id=caller.identity_id,
            is_admin=caller.is_admin,
            is_agent=caller.is_agent,
            anonymous=caller.is_anonymous,
        )


class Permissions(Model):
    push: bool


class PackLimits(Model):
    """What one pack may hold: a client cuts a larger push into packs within these."""

    max_commits: int
    max_snapshots: int
    max_objects: int
    max_rebuilt_entries: int
    max_hashed_manifest_bytes: int
    max_pack_bytes: int

    @classmethod
    def of(cls, limits: Limits) -> PackLimits:
        return cls.model_validate(asdict(limits))


class RefsAnswer(Model):
    repo_id: str
    domain: str
    default_branch: str
    branch_heads: dict[str, str]
    permissions: Permissions | None = omitted_when_none("for signed callers: may they push")
    pack_limits: PackLimits | None = omitted_when_none("for callers who may push")

    @classmethod
    def of(cls, heads: BranchHeads, limits: Limits) -> RefsAnswer:
        return cls(
            repo_id=heads.repo.repo_id,
            domain=heads.repo.domain,
            default_branch=heads.repo.default_branch,
            branch_heads=heads.heads,
            permissions=None if heads.may_push is None else Permissions(push=heads.may_push),
            pack_limits=PackLimits.of(limits) if heads.may_push else None,
        )


class RefMoveAnswer(Model):
    branch: str
    head: str
    previous_head: str | None


class PushError(ErrorAnswer):
    http_status: int


class PushAnswer(Model):
    """A push record; once ingested, what the ingestion did (the first ref move is repeated at
    the top level, as protocol section 4 shows it)."""

    push_id: str
    status: str
    mpack_key: str
    branch: str | None
    head: str | None
    force: bool
    created_at: str
    updated_at: str
    previous_head: str | None = None
    commits_written: int | None = omitted_when_none()
    snapshots_written: int | None = omitted_when_none()
    objects_written: int | None = omitted_when_none()
    bytes: int | None = omitted_when_none()
    updates: list[RefMoveAnswer] | None = omitted_when_none()
    dynamodb_requests: int | None = omitted_when_none()
    s3_requests: int | None = omitted_when_none()
    verify_ms: int | None = omitted_when_none()
    write_ms: int | None = omitted_when_none()
    plan_ms: int | None = omitted_when_none()
    refs_ms: int | None = omitted_when_none()
    total_ms: int | None = omitted_when_none()
    error: PushError | None = omitted_when_none()

    @classmethod
    def of(cls, record: PushRecord) -> PushAnswer:
        answer: dict[str, Any] = {
            "push_id": record.push_id,
            "status": record.state,
            "mpack_key": record.mpack_key,
            "branch": record.branch,
            "head": record.head,
            "force": record.force,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }
        result = record.result
        if result is not None:
            first = result.first
            timings = result.timings
            answer.update(
                branch=first.branch if first else None,
                head=first.head if first else None,
                previous_head=first.previous_head if first else None,
                commits_written=result.commits_written,
                snapshots_written=result.snapshots_written,
                objects_written=result.objects_written,
                bytes=result.bytes,
                updates=[RefMoveAnswer(**vars(u)) for u in result.updates],
                dynamodb_requests=result.dynamodb_requests,
                s3_requests=result.s3_requests,
                verify_ms=timings.verify_ms,
                write_ms=timings.write_ms,
                plan_ms=timings.plan_ms,
                refs_ms=timings.refs_ms,
                total_ms=timings.total_ms,
            )
        if record.error is not None:
            error = record.error
            answer["error"] = PushError(
                code=error.code,
                message=error.message,
                item=error.item,
                http_status=status_of(error.code),
            )
        return cls(**answer)


class PartUrl(Model):
    part_number: int
    url: str


class UploadedPartAnswer(Model):
    part_number: int
    size: int
    etag: str


class PartsAnswer(Model):
    """An upload in parts: every part ``part_size`` bytes but the last; PUT each part's bytes
    to its URL, ask ``push/mpack-parts`` for the next URLs (and, after an interruption, for
    what is there), then ``push/mpack-complete``."""

    upload_id: str
    part_size: int
    part_count: int
    uploaded: list[UploadedPartAnswer] = Field(description="the parts in place")
    part_urls: list[PartUrl] = Field(description="PUT URLs of the next parts missing")
    expires_at: str

    @classmethod
    def of(cls, parts: PartsUpload) -> PartsAnswer:
        return cls(
            upload_id=parts.upload_id,
            part_size=parts.layout.part_size,
            part_count=parts.layout.count,
            uploaded=[UploadedPartAnswer(**vars(p)) for p in parts.uploaded],
            part_urls=[PartUrl(part_number=n, url=u) for n, u in sorted(parts.part_urls.items())],
            expires_at=parts.expires_at,
        )


class PresignAnswer(Model):
    upload_url: str | None = omitted_when_none("the PUT URL of a pack sent whole")
    push_id: str
    mpack_key: str
    expires_at: str
    headers: dict[str, str] = Field(description="the headers the PUT must send")
    status: str = Field(description="'ok' when the pack is in place already")
    multipart: PartsAnswer | None = omitted_when_none("a large pack goes up in parts")

    @classmethod
    def of(cls, presigned: PresignedPush) -> PresignAnswer:
        return cls(
            upload_url=presigned.upload_url,
            push_id=presigned.record.push_id,
            mpack_key=presigned.record.mpack_key,
            expires_at=presigned.expires_at,
            headers=presigned.headers,
            status=presigned.record.state,
            multipart=PartsAnswer.of(presigned.parts) if presigned.parts else None,
        )


class UsageAnswer(Model):
    """What a repository or an owner stores and pushes, against its quota."""

    scope: str = Field(description="'repository' or 'owner'")
    name: str
    bytes_stored: int
    max_bytes: int
    packs_stored: int
    pushes_this_minute: int
    max_pushes_per_minute: int

    @classmethod
    def of(cls, usage: Usage) -> UsageAnswer:
        return cls(
            scope=usage.scope,
            name=usage.name,
            bytes_stored=usage.bytes_stored,
            max_bytes=usage.quota.max_bytes,
            packs_stored=usage.packs_stored,
            pushes_this_minute=usage.pushes_this_minute,
            max_pushes_per_minute=usage.quota.max_pushes_per_minute,
        )


class TokenAnswer(Model):
    """A token as listed: everything but its secret (and its secret's hash)."""

    model_config = ConfigDict(from_attributes=True)

    token_id: str
    name: str
    scope: Role
    created_at: str
    expires_at: int | None
    revoked_at: str | None


class CreatedTokenAnswer(TokenAnswer):
    token: str = Field(description="the secret, shown this once")

    @classmethod
    def created(cls, created: CreatedToken) -> CreatedTokenAnswer:
        listed = TokenAnswer.model_validate(created.record).model_dump()
        return cls(**listed, token=created.secret)


class TokensAnswer(Model):
    tokens: list[TokenAnswer]


class BranchRuleAnswer(Model):
    model_config = ConfigDict(from_attributes=True)

    pattern: str
    force_push: bool
    deletion: bool
    push: str


class ProtectionAnswer(Model):
    version: int = Field(description="0 until the rules are first set")
    rules: list[BranchRuleAnswer]

    @classmethod
    def of(cls, protection: Protection) -> ProtectionAnswer:
        rules = [BranchRuleAnswer.model_validate(r) for r in protection.rules]
        return cls(version=protection.version, rules=rules)


class PushCountsAnswer(Model):
    commits: int
    snapshots: int
    objects: int
    bytes: int


class PushEventAnswer(Model):
    """One ref change, as the bus carries it in ``detail``."""

    event_id: str
    repo: str
    repo_id: str
    ref: str
    before: str | None
    after: str | None
    created: bool
    deleted: bool
    forced: bool
    pusher: str | None
    push_id: str
    at: str
    counts: PushCountsAnswer

    @classmethod
    def of(cls, event: PushEvent) -> PushEventAnswer:
        return cls.model_validate(event.detail())


class LoggedEventAnswer(PushEventAnswer):
    published_at: str


class EventsAnswer(Model):
    events: list[LoggedEventAnswer] = Field(description="oldest first")
    truncated: bool = Field(description="older events after `since` were left out")

    @classmethod
    def of(cls, recent: RecentEvents) -> EventsAnswer:
        events = [
            LoggedEventAnswer(
                **PushEventAnswer.of(e.event).model_dump(), published_at=e.published_at
            )
            for e in recent.events
        ]
        return cls(events=events, truncated=recent.truncated)


class DeletedRefAnswer(Model):
    branch: str
    previous_head: str
    event_id: str = Field(description="the push event this deletion publishes")

    @classmethod
    def of(cls, event: PushEvent) -> DeletedRefAnswer:
        assert event.before is not None
        return cls(branch=event.ref, previous_head=event.before, event_id=event.event_id)


class DoomedAnswer(Model):
    """An S3 object garbage collection deleted, or would delete in a dry run."""

    model_config = ConfigDict(from_attributes=True)

    key: str
    bytes: int


class RepoSweepAnswer(Model):
    """One repository's sweep: ``outcome`` swept, clean (nothing to delete), busy (a push or
    another collection: the next pass tries again), damaged (history is missing: nothing
    deleted), stopped (out of time, the next pass goes on) or deleted (a deleted repository)."""

    model_config = ConfigDict(from_attributes=True)

    repo_id: str
    name: str
    outcome: str
    reason: str
    commits: int
    snapshots: int
    packs: int
    items: int
    bytes: int
    files: list[DoomedAnswer]


class GcAnswer(Model):
    """One garbage collection pass; ``complete`` false when it stopped at its time budget."""

    model_config = ConfigDict(from_attributes=True)

    dry_run: bool
    complete: bool
    seconds: float
    items: int
    bytes: int
    dynamodb_requests: int
    s3_requests: int
    repositories: list[RepoSweepAnswer]
