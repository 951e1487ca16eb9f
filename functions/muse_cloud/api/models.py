"""Request bodies, validated by Powertools (and listed in the OpenAPI document)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


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


class UpdateRepo(_Body):
    # The answer's own spelling (``defaultBranch``) is taken too.
    default_branch: str = Field(validation_alias=AliasChoices("default_branch", "defaultBranch"))


class BranchRuleBody(_Body):
    pattern: str = Field(description="fnmatch pattern of branch names; ':default' is the default")
    force_push: bool = Field(default=False, description="a covered branch may be force-pushed")
    deletion: bool = Field(default=False, description="a covered branch may be deleted")
    push: Literal["writers", "admins"] = Field(
        default="writers", description="who may change a covered branch at all"
    )


class ProtectionBody(_Body):
    rules: list[BranchRuleBody]
    version: int | None = Field(
        default=None, description="replace only if the rules are still at this version"
    )
