"""The HTTP status of every refusal code: the one place a code becomes a status.

Codes raised by ``muse_core`` (the verification engine) that are not listed here say that a pack
or a body is invalid: 422. A code the server raises must be listed (a test reads the source to
make sure), so that no refusal falls to that default by accident.
"""

from __future__ import annotations

from typing import Final

from muse_cloud.domain.errors import ServiceError

INVALID_CONTENT: Final = 422

STATUS_BY_CODE: Final[dict[str, int]] = {
    # 400: the request cannot be read, or names something no one could have.
    "malformed_body": 400,
    "invalid_body": 400,
    "invalid_handle": 400,
    "invalid_repo_name": 400,
    "invalid_role": 400,
    "invalid_public_key": 400,
    "invalid_identity": 400,
    "owner_is_not_collaborator": 400,
    # 401: who is asking is unknown or unproven.
    "auth_required": 401,
    "auth_malformed": 401,
    "auth_bad_signature": 401,
    "auth_stale_timestamp": 401,
    "auth_unknown_key": 401,
    "auth_replayed_nonce": 401,
    "auth_token_malformed": 401,
    "auth_token_needs_https": 401,
    "auth_token_revoked": 401,
    "auth_token_expired": 401,
    "auth_unknown_token": 401,
    # 403: known, and not allowed.
    "forbidden": 403,
    "token_cannot_manage_tokens": 403,
    "branch_protected": 403,
    # 404: nothing there (or nothing this caller may see).
    "not_found": 404,
    "no_such_route": 404,
    "repo_not_found": 404,
    "pack_not_found": 404,
    # 409: the state moved, or already holds something else.
    "repo_exists": 409,
    "identity_exists": 409,
    "handle_taken": 409,
    "non_fast_forward": 409,
    "ref_conflict": 409,
    "branch_name_conflict": 409,
    "push_mismatch": 409,
    "push_in_progress": 409,
    "release_exists": 409,
    "tag_exists": 409,
    "default_branch": 409,
    "protection_conflict": 409,
    "repository_busy": 409,
    # 413: over a limit.
    "limit_exceeded": 413,
    "answer_too_large": 413,
    # 415: a body of a type no route reads.
    "unsupported_media_type": 415,
    # 422: readable, but invalid.
    "invalid_request": 422,
    "invalid_id": 422,
    "invalid_type": 422,
    "invalid_size": 422,
    "invalid_limit": 422,
    "invalid_cursor": 422,
    "invalid_commit": 422,
    "invalid_tag": 422,
    "invalid_channel": 422,
    "invalid_semver": 422,
    "invalid_token_name": 422,
    "invalid_expiry": 422,
    "weak_public_key": 422,
    "empty_push": 422,
    "missing_commit": 422,
    "missing_snapshot": 422,
    "object_hash_mismatch": 422,
    "unsupported_direction": 422,
    "invalid_protection": 422,
    "invalid_since": 422,
    # 500: the server failed, and says where.
    "internal_error": 500,
    "corrupt_snapshot": 500,
    "missing_object": 500,
    "missing_value": 500,
    "delete_failed": 500,
    "token_id_collision": 500,
    "ingest_attempts_exhausted": 500,
    "unreadable_pack": 500,
}


def status_of(code: str) -> int:
    return STATUS_BY_CODE.get(code, INVALID_CONTENT)


def http_status(error: ServiceError) -> int:
    return status_of(error.code)
