"""A repository's domain, given when it is made, is what its clients check out with: refs
answer it, and a clone's repo.json says it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from muse_cloud_cli.main import main
from muse_cloud_cli.workload import Workload, generate_history
from muse_cloud_dev.local_stack import LocalStack
from muse_core.paths import muse_dir


def test_the_domain_given_at_creation_reaches_every_clone(
    local_stack: LocalStack, admin: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = ["--server", local_stack.api_url]
    assert main(["repo", "create", "admin/scores", "--domain", "midi", *server, *admin]) == 0
    assert "midi" in capsys.readouterr().out
    remote = f"{local_stack.api_url}/admin/scores"
    source = tmp_path / "source"
    generate_history(source, Workload(commits=2, files=3, changed_per_commit=1))
    assert main(["push", "-C", str(source), "--remote", remote, *admin]) == 0
    capsys.readouterr()
    assert main(["refs", remote, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["domain"] == "midi"
    clone = tmp_path / "clone"
    assert main(["clone", remote, str(clone)]) == 0
    repo_json = json.loads((muse_dir(clone) / "repo.json").read_text())
    assert repo_json["domain"] == "midi"
    assert main(["repo", "create", "admin/other", "--domain", "Not A Domain", *server, *admin]) == 1
    assert "invalid_request" in capsys.readouterr().err
