"""``/api/tokens``: personal access tokens of the signing identity (a Powertools Router)."""

from __future__ import annotations

import json
from typing import Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import BaseModel, ConfigDict, Field

from muse_cloud.auth.identities import Caller
from muse_cloud.services.tokens import MAX_NAME_CHARS, TokenService

router = Router()  # type: ignore[no-untyped-call]


class CreateToken(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(default="", max_length=MAX_NAME_CHARS)
    scope: Literal["read", "write", "admin"] = "read"
    expires_in_days: int | None = None


def _caller() -> Caller:
    found: Caller = router.context["caller"]
    return found


@router.post("/api/tokens")
def create_token(body: CreateToken) -> Response[Any]:
    created = TokenService().create(_caller(), body.name, body.scope, body.expires_in_days)
    return Response(201, "application/json", json.dumps(created))


@router.get("/api/tokens")
def list_tokens() -> dict[str, Any]:
    return {"tokens": TokenService().list(_caller())}


@router.delete("/api/tokens/<token_id>")
def revoke_token(token_id: str) -> dict[str, Any]:
    return TokenService().revoke(_caller(), token_id)
