"""The layers of ARCHITECTURE.md, enforced: every import in the server, the core and the client
goes down the layers, never up or across.

Imports are read from the source (every ``import`` and ``from`` anywhere in a module, inside
functions and ``TYPE_CHECKING`` blocks too: a lazy or type-only import is a dependency all the
same).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {
    "muse_core": ROOT / "layers" / "muse_core" / "muse_core",
    "muse_cloud": ROOT / "functions" / "muse_cloud",
    "muse_cloud_cli": ROOT / "cli" / "muse_cloud_cli",
}

# Each layer of the server and what it may import of the project: nothing else.
SERVER_LAYERS: dict[str, set[str]] = {
    "domain": {"domain"},
    "config": set(),
    "auth": {"auth", "domain"},
    "storage": {"storage", "domain"},
    "services": {"services", "auth", "storage", "domain"},
    "telemetry": {"domain"},
    "composition": {"services", "storage", "domain", "config", "telemetry"},
    "api": {"api", "composition", "services", "auth", "domain"},
    "handlers": {"handlers", "api", "composition", "services", "storage", "domain", "telemetry"},
}
# Third-party packages only some layers may use.
AWS = {
    "boto3",
    "botocore",
    "mypy_boto3_dynamodb",
    "mypy_boto3_s3",
    "mypy_boto3_sqs",
    "mypy_boto3_events",
}
POWERTOOLS = {"aws_lambda_powertools"}
EXTERNAL_ALLOWED: dict[str, set[str]] = {
    "storage": AWS,
    "composition": AWS | POWERTOOLS,
    "telemetry": POWERTOOLS,
    "api": POWERTOOLS,
    "handlers": AWS | POWERTOOLS,
}
# Never imported by the core nor by the client: they are the server's or the dev stack's.
SERVER_ONLY = AWS | POWERTOOLS | {"moto", "muse_cloud", "muse_cloud_dev", "pydantic"}


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every module a file imports, absolute, with its line."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "muse_cloud" or len(parts) < 2:
        return None
    return parts[1]


def server_violations(package: Path) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        layer = relative.parts[0].removesuffix(".py")
        if layer == "__init__":
            continue
        allowed = SERVER_LAYERS.get(layer)
        if allowed is None:
            found.append(f"{relative}: in no layer of ARCHITECTURE.md")
            continue
        for line, module in imports(path):
            target = _layer(module)
            top = module.split(".")[0]
            if (target is not None and target not in allowed) or (
                top in AWS | POWERTOOLS and top not in EXTERNAL_ALLOWED.get(layer, set())
            ):
                found.append(f"{relative}:{line}: {layer} imports {module}")
    return found


def standalone_violations(package: Path) -> list[str]:
    """The core and the client: none of the server's packages, nor the dev stack's."""
    return [
        f"{path.relative_to(package)}:{line}: imports {module}"
        for path in sorted(package.rglob("*.py"))
        for line, module in imports(path)
        if module.split(".")[0] in SERVER_ONLY
    ]


def test_server_layers_import_only_downwards() -> None:
    assert server_violations(SOURCES["muse_cloud"]) == []


@pytest.mark.parametrize("package", ["muse_core", "muse_cloud_cli"])
def test_core_and_client_stand_alone(package: str) -> None:
    assert standalone_violations(SOURCES[package]) == []


def test_a_wrong_import_is_caught(tmp_path: Path) -> None:
    """The checks above can fail: an upward import and a boto3 in the core are found."""
    server = tmp_path / "muse_cloud"
    (server / "storage").mkdir(parents=True)
    (server / "storage" / "refs.py").write_text(
        "from __future__ import annotations\n\n"
        "def lazy() -> None:\n"
        "    from muse_cloud.services.ingest import IngestService\n"
    )
    (server / "domain.py").write_text("import boto3\n")
    assert server_violations(server) == [
        "domain.py:1: domain imports boto3",
        "storage/refs.py:4: storage imports muse_cloud.services.ingest",
    ]
    core = tmp_path / "muse_core"
    core.mkdir()
    (core / "verify.py").write_text("from botocore.exceptions import ClientError\n")
    assert standalone_violations(core) == ["verify.py:1: imports botocore.exceptions"]
