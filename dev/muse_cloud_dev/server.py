"""Every name the dev stack (and the tests' fixtures) takes from the server package, in one place:
when the server's modules move or are renamed, this file follows and nothing else does."""

from __future__ import annotations

from muse_cloud.composition import cold_start

# ``module:function`` of each Lambda handler, as template.yaml's Handler names them; imported by
# the stack's worker processes, never by the stack's own.
API_HANDLER = "muse_cloud.handlers.api:lambda_handler"
UNPACK_HANDLER = "muse_cloud.handlers.unpack:lambda_handler"


def forget_cached_clients() -> None:
    """Drop what the server built at its cold start (clients, stores, services), so the next
    call reads the environment again: the stack and the tests switch endpoints and resource
    names between runs."""
    cold_start.reset()


def ensure_bootstrap_admin(public_key: str) -> None:
    """Register the bootstrap admin (handle ``admin``) under this base64url Ed25519 key, as the
    API function does on first use; a second call with the same key changes nothing."""
    cold_start.get().identities.ensure_bootstrap_admin(public_key)


def api_logger_name() -> str:
    """The name of the API function's logger (importing the handler creates it)."""
    from muse_cloud.telemetry import logger

    return logger.name
