"""What ``sam build`` ships: every function and the layer are built by their Makefiles, and their
code carries bytecode that Lambda uses as it is (its code directory is read-only, so code shipped
as sources is compiled again at every cold start)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from muse_cloud_dev.provision import load_template

ROOT = Path(__file__).resolve().parents[1]
# The flags word of a hash-based .pyc that the import system never checks against its source.
UNCHECKED_HASH = 0b01


def _resources(kind: str) -> dict[str, dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = load_template()["Resources"]
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def _sources(directory: str, artifacts: Path) -> None:
    # A builder whose Python keeps its bytecode elsewhere, as this machine's benchmark sets it.
    elsewhere = artifacts.parent / "bytecode-elsewhere"
    subprocess.run(
        ["make", "--silent", "-C", str(ROOT / directory), "sources"],
        env={
            **os.environ,
            "ARTIFACTS_DIR": str(artifacts),
            "PYTHON": sys.executable,
            "PYTHONPYCACHEPREFIX": str(elsewhere),
        },
        check=True,
    )
    assert not elsewhere.exists(), "the bytecode is shipped, not written under the prefix"


@pytest.mark.parametrize(
    ("kind", "code"),
    [("AWS::Serverless::Function", "CodeUri"), ("AWS::Serverless::LayerVersion", "ContentUri")],
)
def test_every_function_and_layer_has_a_build_target(kind: str, code: str, tmp_path: Path) -> None:
    resources = _resources(kind)
    assert resources
    for name, resource in resources.items():
        assert resource["Metadata"]["BuildMethod"] == "makefile", name
        directory = ROOT / resource["Properties"][code]
        dry_run = subprocess.run(
            ["make", "--dry-run", "-C", str(directory), f"build-{name}"],
            env={**os.environ, "ARTIFACTS_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
        )
        assert dry_run.returncode == 0, f"{name}: {dry_run.stderr}"
        assert "pip install" in dry_run.stdout and "compileall" in dry_run.stdout


def test_the_built_code_runs_from_bytecode_that_is_never_checked(tmp_path: Path) -> None:
    function, layer = tmp_path / "function", tmp_path / "layer"
    function.mkdir()
    layer.mkdir()
    _sources("functions", function)
    _sources("layers/muse_core", layer)

    for package in (function / "muse_cloud", layer / "python" / "muse_core"):
        sources = sorted(package.rglob("*.py"))
        assert sources
        tag = sys.implementation.cache_tag
        for source in sources:
            compiled = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
            flags = int.from_bytes(compiled.read_bytes()[4:8], "little")
            assert flags == UNCHECKED_HASH, compiled

    # A handler's source edited after the build: the bytecode still runs, unread and unchecked.
    handler = function / "muse_cloud" / "handlers" / "api.py"
    handler.write_text("raise SystemExit('compiled from source')\n", encoding="utf-8")
    imported = subprocess.run(
        [sys.executable, "-c", "import muse_cloud.handlers.api"],
        env={
            **os.environ,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": os.pathsep.join([str(function), str(layer / "python")]),
            "MUSE_TABLE_NAME": "table",
            "MUSE_BUCKET_NAME": "bucket",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr
