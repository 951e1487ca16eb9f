"""What a sandbox builds once (``composition.ColdStart``)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

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
    assert gc.isenabled()


@pytest.mark.parametrize("handler", ["api", "unpack", "gc", "events"])
def test_a_handlers_import_runs_no_collection_and_freezes_what_it_made(handler: str) -> None:
    """A cold start's import builds only what lives as long as the sandbox: a collection then
    would walk it all and free nothing."""
    probe = (
        "import gc, json; before = [s['collections'] for s in gc.get_stats()]; "
        f"import muse_cloud.handlers.{handler}; "
        "print(json.dumps([before, [s['collections'] for s in gc.get_stats()], "
        "gc.isenabled(), gc.get_freeze_count()]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        check=True,
    )
    before, after, enabled, frozen = json.loads(done.stdout)
    # Unpaused, the API function's import ran 139 young, 13 middle and 1 full collection; the
    # probe's own lines, once the collector is back, may trigger one young one.
    assert after[1:] == before[1:] and after[0] - before[0] <= 1, (before, after)
    assert enabled, "the collector runs again once the handler is imported"
    assert frozen > 50_000, "what the import made is out of the collector's generations"
