"""Request bodies, validated by Powertools (and listed in the OpenAPI document)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CreateRepo(_Body):
    # As auth.identities.validate_handle allows: 1-40 characters.
    owner: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=100)
    visibility: Literal["public", "private"] = "public"
    initialize: bool = False
    # What the client's repo.json declares (the Muse client reads it back from refs).
    domain: str = Field(default="code", pattern=r"^[a-z][a-z0-9_-]{0,39}$")


class PresignPush(_Body):
    mpack_key: str
    size_bytes: int
    branch: str | None = None
    head: str | None = None
    force: bool = False
    multipart: bool = Field(
        default=False, description="the client can upload a large pack in parts"
    )


class UploadPartsRequest(_Body):
    mpack_key: str
    # S3's upload ids are opaque and well under this.
    upload_id: str = Field(min_length=1, max_length=1024)


class UnpackPush(_Body):
    mpack_key: str
    branch: str | None = None
    head: str | None = None
    force: bool = False


class FetchRequest(_Body):
    want: list[str] = Field(default_factory=list)
    have: list[str] = Field(default_factory=list)


class RegisterIdentity(_Body):
    handle: str
    public_key: str
    is_admin: bool = False
    is_agent: bool = False


class SetCollaborator(_Body):
    role: Literal["read", "write", "admin"]
