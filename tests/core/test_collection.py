"""``collection_paused``: no cyclic collection inside, the collector as it was after."""

from __future__ import annotations

import gc

import pytest

from muse_core.collection import collection_paused


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
