"""schemathesis against ``/openapi.json`` of the local stack (loopback only): every generated
request, on every operation, must be answered without a 5xx.

Run (``make soak`` does): ``PYTHONPATH=tests python -m attack.schemathesis_stack [EXAMPLES]``
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from muse_cloud_dev.local_stack import LocalStack

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
# A bound on the whole run, whatever the number of examples asks for.
RUN_SECONDS = 900


def main() -> int:
    examples = sys.argv[1] if len(sys.argv) > 1 else "50"
    with (
        tempfile.TemporaryDirectory(prefix="schemathesis-") as data,
        LocalStack(Path(data)) as stack,
    ):
        command = [
            SCHEMATHESIS,
            "run",
            f"{stack.api_url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            examples,
            "--seed",
            "1",
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--continue-on-failure",
        ]
        return subprocess.run(command, timeout=RUN_SECONDS, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
