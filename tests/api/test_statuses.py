"""One table maps refusal codes to HTTP statuses: every code the server raises is in it, and the
verification engine's codes fall to 422 (413 for a limit), as protocol section 4 says."""

from __future__ import annotations

import ast
from pathlib import Path

from muse_cloud.api.statuses import INVALID_CONTENT, STATUS_BY_CODE, status_of

SERVER = Path(__file__).resolve().parents[2] / "functions" / "muse_cloud"


def _raised_codes() -> dict[str, str]:
    """Each code a ``ServiceError(...)`` or ``Refusal(...)`` of the server is built with."""
    found: dict[str, str] = {}
    for path in SERVER.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("ServiceError", "Refusal")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found[node.args[0].value] = f"{path.relative_to(SERVER)}:{node.lineno}"
    return found


def test_every_code_the_server_raises_has_its_status() -> None:
    raised = _raised_codes()
    assert len(raised) > 40, raised
    missing = {code: where for code, where in raised.items() if code not in STATUS_BY_CODE}
    assert missing == {}


def test_codes_of_the_verification_engine() -> None:
    assert status_of("commit_id_mismatch") == INVALID_CONTENT == 422
    assert status_of("invalid_id") == 422
    assert status_of("limit_exceeded") == 413
    assert status_of("no_such_route") == 404
