"""atheris on the verification engine: ``parse_mpack`` and ``verify_mpack`` on arbitrary bytes,
seeded with the attack suite's valid pack. Every input ends verified or as a ``MuseError`` whose
status is a 4xx; anything else is a crash libFuzzer reports (and saves) as a finding.

Run (``make soak`` does): ``PYTHONPATH=tests python -m attack.fuzz_mpack -max_total_time=120``
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

# Coverage feedback from the engine only: instrumenting boto3 and the rest would cost minutes.
with atheris.instrument_imports(include=["muse_core"]):
    from muse_core.errors import MuseError
    from muse_core.mpack import parse_mpack
    from muse_core.verify import EmptyReceiver, verify_mpack

from attack.mutations import base_history, base_pack, encode
from muse_cloud.api.statuses import http_status
from muse_cloud.domain.errors import ServiceError


def test_one_input(data: bytes) -> None:
    try:
        parse_mpack(data)
        verify_mpack(data, EmptyReceiver())
    except MuseError as error:
        if not 400 <= http_status(ServiceError.from_core(error)) < 500:
            raise AssertionError(f"{error.code} is not a 4xx") from error
        error.as_dict()


def seed_corpus(directory: Path) -> Path:
    pack = base_pack(base_history())
    seeds = {
        "pack": encode(pack),
        "commits-only": encode({"mpack_version": 1, "commits": pack["commits"]}),
        "snapshots-only": encode({"mpack_version": 1, "snapshots": pack["snapshots"]}),
        "empty-map": encode({}),
    }
    for name, data in seeds.items():
        (directory / name).write_bytes(data)
    return directory


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="fuzz-mpack-") as corpus:
        atheris.Setup([*sys.argv, str(seed_corpus(Path(corpus)))], test_one_input)
        atheris.Fuzz()


if __name__ == "__main__":
    main()
