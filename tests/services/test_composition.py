"""What a sandbox builds once (``composition.ColdStart``)."""

from __future__ import annotations

import gc

import pytest

from muse_cloud.composition import ColdStart, Services


def test_the_first_cold_start_keeps_what_it_built_out_of_the_collector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ColdStart, "frozen", False)
    gc.unfreeze()
    first = ColdStart(Services.in_memory)
    built = first.get()
    assert first.get() is built, "built once"
    frozen = gc.get_freeze_count()
    assert frozen > 0, "what the cold start found is in the permanent generation"

    again = ColdStart(Services.in_memory)
    again.get()
    assert gc.get_freeze_count() == frozen, "a second build in the process freezes nothing"
