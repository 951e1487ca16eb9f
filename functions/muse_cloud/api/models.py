"""Request bodies, validated by Powertools (and listed in the OpenAPI document)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class Model(BaseModel):
    """Every model of the API. Its validator and schema are built when first used, not at import:
    a cold start then pays only for the models its own request uses (building all of them took
    about a third of the API function's import)."""

    model_config = ConfigDict(defer_build=True)


class Body(Model):
    model_config = ConfigDict(extra="ignore")


class CreateRepo(Body):
    # As auth.identities.validate_handle allows: 1-40 characters.
    owner: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=100)
    visibility: Literal["public", "private"] = "public"
    initialize: bool = False
    # What the client's repo.json declares (the Muse client reads it back from refs).
    domain: str = Field(default="code", pattern=r"^[a-z][a-z0-9_-]{0,39}$")


class PresignPush(Body):
    mpack_key: str
    size_bytes: int
    branch: str | None = None
    head: str | None = None
    force: bool = False
    multipart: bool = Field(
        default=False, description="the client can upload a large pack in parts"
    )


class UploadPartsRequest(Body):
    mpack_key: str
    # S3's upload ids are opaque and well under this.
    upload_id: str = Field(min_length=1, max_length=1024)


class UnpackPush(Body):
    mpack_key: str
    branch: str | None = None
    head: str | None = None
    force: bool = False


class FetchRequest(Body):
    want: list[str] = Field(default_factory=list)
    have: list[str] = Field(default_factory=list)


class RegisterIdentity(Body):
    handle: str
    public_key: str
    is_admin: bool = False
    is_agent: bool = False


class SetCollaborator(Body):
    role: Literal["read", "write", "admin"]


class UpdateRepo(Body):
    # The answer's own spelling (``defaultBranch``) is taken too.
    default_branch: str = Field(validation_alias=AliasChoices("default_branch", "defaultBranch"))


class BranchRuleBody(Body):
    pattern: str = Field(description="fnmatch pattern of branch names; ':default' is the default")
    force_push: bool = Field(default=False, description="a covered branch may be force-pushed")
    deletion: bool = Field(default=False, description="a covered branch may be deleted")
    push: Literal["writers", "admins"] = Field(
        default="writers", description="who may change a covered branch at all"
    )


class ProtectionBody(Body):
    rules: list[BranchRuleBody]
    version: int | None = Field(
        default=None, description="replace only if the rules are still at this version"
    )
