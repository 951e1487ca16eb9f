"""One local stack per test module, and the arguments that sign as its admin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from muse_cloud_dev.local_stack import LocalStack


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture
def admin(local_stack: LocalStack) -> list[str]:
    return ["--identity", str(local_stack.admin_key_path)]
