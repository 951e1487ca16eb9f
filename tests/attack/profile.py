"""How hard the attack suites push: a fast, derandomized run in ``make test``, many more random
examples under ``make soak`` (``MUSE_ATTACK_PROFILE=soak``)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

SOAK = os.environ.get("MUSE_ATTACK_PROFILE", "") == "soak"
# Soak runs are random and this many times longer; the fast run is the same every time.
SOAK_FACTOR = int(os.environ.get("MUSE_ATTACK_SOAK_FACTOR", "25"))


def examples(fast: int) -> int:
    return fast * SOAK_FACTOR if SOAK else fast


def attack_settings(fast: int) -> settings:
    """``fast`` examples per test in ``make test``; the examples do not depend on the run."""
    return settings(
        max_examples=examples(fast),
        derandomize=not SOAK,
        database=None,
        deadline=None,
        # Shrinking a found failure costs more than the fast run itself: soak runs shrink.
        phases=list(Phase) if SOAK else [Phase.explicit, Phase.generate],
        print_blob=True,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )
