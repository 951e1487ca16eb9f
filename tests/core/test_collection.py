"""``collection_paused`` (no cyclic collection inside) and ``full_collections_deferred`` (young
ones only): the collector as it was after."""

from __future__ import annotations

import gc

import pytest

from muse_core.collection import collection_paused, full_collections_deferred


def test_the_collector_is_paused_inside_and_resumed_after_even_on_error() -> None:
    assert gc.isenabled()
    with collection_paused():
        assert not gc.isenabled()
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled(), "an inner block leaves the outer one paused"
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collection_paused():
        raise RuntimeError("the work failed")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_only_young_collections_run_while_full_ones_are_deferred() -> None:
    thresholds = gc.get_threshold()
    collected: list[int] = []

    def noted(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collected.append(info["generation"])

    gc.callbacks.append(noted)
    gc.set_threshold(1, 1, 1)
    try:
        with full_collections_deferred():
            collected.clear()  # entering may have run any (the thresholds were still 1)
            kept = [[n] for n in range(10_000)]
            inside = list(collected)
        assert inside and max(inside) < 2, sorted(set(inside))
        assert gc.get_threshold() == (1, 1, 1)
        with pytest.raises(RuntimeError), full_collections_deferred():
            raise RuntimeError("the work failed")
        assert gc.get_threshold() == (1, 1, 1)
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(noted)
    assert len(kept) == 10_000
