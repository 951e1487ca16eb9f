"""``POST /api/gc``: one garbage collection pass, for site admins. The scheduled function runs
the same pass (``handlers.gc``); this route runs it on demand (``muse-cloud gc``)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import Field

from muse_cloud.api.answers import GcAnswer
from muse_cloud.api.edge import SIGNED, caller, services, signed_only
from muse_cloud.api.models import Body
from muse_cloud.api.routes import documented

router = Router()  # type: ignore[no-untyped-call]

# The API function answers within 29 s: the pass starts no repository after this.
BUDGET_SECONDS = 20.0


class CollectGarbage(Body):
    dry_run: bool = False
    # OWNER/NAME: that repository only (deleted repositories are left to a whole pass).
    repo: str | None = Field(default=None, pattern=r"^[^/]+/[^/]+$")
    grace_seconds: int | None = Field(default=None, ge=0)


@router.post("/api/gc", responses=documented(), security=SIGNED)
@signed_only
def collect_garbage(body: CollectGarbage) -> GcAnswer:
    report = services(router).gc.collect(
        caller(router), body.repo, body.dry_run, body.grace_seconds, BUDGET_SECONDS
    )
    return GcAnswer.model_validate(report)
