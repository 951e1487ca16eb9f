"""The service layer on in-memory stores: the stores' own code over a dictionary table and
bucket (``storage.memory``), no AWS and no moto."""

from __future__ import annotations

import pytest

from muse_cloud.composition import Services
from muse_cloud.domain.identities import Caller
from muse_cloud.domain.repos import Repo
from muse_cloud.storage.layout import UploadKey
from muse_core.mpack import encode_mpack, mpack_key

OLIVIA = Caller("olivia", "sha256:" + "01" * 32)
STRANGER = Caller("stan", "sha256:" + "02" * 32)
ADMIN = Caller("admin", "sha256:" + "03" * 32, is_admin=True)


@pytest.fixture
def services() -> Services:
    return Services.in_memory()


@pytest.fixture
def repo(services: Services) -> Repo:
    return services.repos.create(OLIVIA, "olivia", "songs", "public", False)


def upload(services: Services, repo: Repo, pack: dict[str, object]) -> UploadKey:
    """The pack's bytes where a client's presigned PUT puts them."""
    data = encode_mpack(pack)
    key = UploadKey(repo.repo_id, mpack_key(data).removeprefix("sha256:"))
    services.stores.packs.put_upload(key, data)
    return key
