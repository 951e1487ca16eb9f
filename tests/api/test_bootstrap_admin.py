"""The deploy-time bootstrap admin: registered once per process, and never a reason to fail."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from muse_cloud import telemetry
from muse_cloud.services.identities import IdentityService
from muse_cloud_cli.signer import new_identity
from muse_cloud_dev.provision import Provisioned
from muse_cloud_dev.server import forget_cached_clients, services

from .client import call

KEY_ENV = "MUSE_BOOTSTRAP_ADMIN_PUBLIC_KEY"


@pytest.fixture
def fresh_process(stack: Provisioned) -> Iterator[None]:
    """As if the function had just cold-started (and leave no attempt behind for other tests)."""
    forget_cached_clients()
    yield
    forget_cached_clients()


def test_the_bootstrap_admin_is_registered_on_first_use(
    fresh_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_identity("admin", is_admin=True)
    monkeypatch.setenv(KEY_ENV, key.public_key)
    answer = call("GET", "/api/identities/me", key=key)
    assert answer.status == 200, answer.body
    assert answer.json()["handle"] == "admin" and answer.json()["is_admin"] is True


def test_a_rotated_key_is_logged_and_tried_once(
    fresh_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = new_identity("admin", is_admin=True)
    services().identities.ensure_bootstrap_admin(first.public_key)
    # The stack was redeployed with a new key: handle "admin" already belongs to the old one.
    monkeypatch.setenv(KEY_ENV, new_identity("admin", is_admin=True).public_key)
    attempts: list[str] = []
    warnings: list[str] = []
    real = IdentityService.ensure_bootstrap_admin

    def counting(service: IdentityService, key: str) -> object:
        attempts.append(key)
        return real(service, key)

    monkeypatch.setattr(IdentityService, "ensure_bootstrap_admin", counting)
    monkeypatch.setattr(
        telemetry.logger, "warning", lambda msg, *_, **__: warnings.append(str(msg))
    )
    forget_cached_clients()

    for _ in range(3):
        answer = call("GET", "/api/identities/me", key=first)
        assert answer.status == 200, answer.body
        assert answer.json()["handle"] == "admin"
    assert len(attempts) == 1
    assert len(warnings) == 1
