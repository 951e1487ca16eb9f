"""``/api/tokens``: personal access tokens of the signing identity (MSign only)."""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import Field

from muse_cloud.api.answers import CreatedTokenAnswer, TokenAnswer, TokensAnswer
from muse_cloud.api.edge import MSIGN_ONLY, caller, services, signed_only
from muse_cloud.api.models import Body
from muse_cloud.api.routes import documented
from muse_cloud.services.tokens import MAX_NAME_CHARS

router = Router()  # type: ignore[no-untyped-call]


class CreateToken(Body):
    name: str = Field(default="", max_length=MAX_NAME_CHARS)
    scope: Literal["read", "write", "admin"] = "read"
    expires_in_days: int | None = None


@router.post("/api/tokens", status_code=201, responses=documented(201), security=MSIGN_ONLY)
@signed_only
def create_token(body: CreateToken) -> CreatedTokenAnswer:
    created = services(router).tokens.create(
        caller(router), body.name, body.scope, body.expires_in_days
    )
    return CreatedTokenAnswer.created(created)


@router.get("/api/tokens", responses=documented(), security=MSIGN_ONLY)
@signed_only
def list_tokens() -> TokensAnswer:
    listed = services(router).tokens.list(caller(router))
    return TokensAnswer(tokens=[TokenAnswer.model_validate(r) for r in listed])


@router.delete("/api/tokens/<token_id>", responses=documented(), security=MSIGN_ONLY)
@signed_only
def revoke_token(token_id: str) -> TokenAnswer:
    return TokenAnswer.model_validate(services(router).tokens.revoke(caller(router), token_id))
