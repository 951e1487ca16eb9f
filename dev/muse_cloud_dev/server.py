"""Every name the dev stack (and the tests' fixtures) takes from the server package, in one place:
when the server's modules move or are renamed, this file follows and nothing else does."""

from __future__ import annotations

from muse_cloud import aws
from muse_cloud.auth.identities import IdentityStore
from muse_cloud.config import settings
from muse_cloud.services.unpack import ingest_once

# ``module:function`` of each Lambda handler, as template.yaml's Handler names them; imported by
# the stack's worker processes, never by the stack's own.
API_HANDLER = "muse_cloud.handlers.api:lambda_handler"
UNPACK_HANDLER = "muse_cloud.handlers.unpack:lambda_handler"


def forget_cached_clients() -> None:
    """Drop the server's per-process caches (settings, boto3 clients, the ingestion service), so
    the next call reads the environment again: the stack and the tests switch endpoints and
    resource names between runs."""
    settings.cache_clear()
    aws.reset_clients()
    ingest_once.cache_clear()


def ensure_bootstrap_admin(public_key: str) -> None:
    """Register the bootstrap admin (handle ``admin``) under this base64url Ed25519 key, as the
    API function does on first use; a second call with the same key changes nothing."""
    IdentityStore().ensure_bootstrap_admin(public_key)


def api_logger_name() -> str:
    """The name of the API function's logger (importing the handler creates it)."""
    from muse_cloud.handlers import api

    return api.logger.name
