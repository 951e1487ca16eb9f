"""``muse-cloud demo`` as a user runs it: the installed console script, in its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

MUSE_CLOUD = Path(sys.executable).parent / "muse-cloud"


def test_small_demo_matches_everything(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(MUSE_CLOUD), "demo", "--commits", "20", "--files", "30", "--changed", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all checks passed" in done.stdout
    for figure in ("pack size", "upload", "ingestion", "verification", "clone", "total"):
        assert figure in done.stdout
    assert "MISMATCH" not in done.stdout
    # It ends with what a person runs next to try it by hand, in order.
    tail = done.stdout[done.stdout.index("try it by hand") :].splitlines()[1:4]
    assert tail[0].strip() == "muse-cloud dev", tail
    assert tail[1].strip().startswith("muse-cloud repo create admin/songs --identity "), tail
    assert "muse-cloud push -C songs --remote http://127.0.0.1:8787/admin/songs -u" in tail[2]
