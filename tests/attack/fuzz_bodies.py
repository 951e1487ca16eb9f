"""atheris on the API's request decoding: arbitrary bodies under each content type on every
route that takes a body, through the API handler on an in-process moto stack, signed by an
admin so that they get past authentication. Every answer is a 2xx or a coded 4xx.

Run (``make soak`` does): ``PYTHONPATH=tests python -m attack.fuzz_bodies -max_total_time=60``
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import atheris

# Coverage feedback from the request path only: instrumenting boto3 and moto would cost minutes.
with atheris.instrument_imports(include=["muse_cloud.api", "muse_cloud.handlers"]):
    from muse_cloud.handlers import api  # noqa: F401

import boto3
from api.client import call
from api.test_endpoints import bootstrap_admin, create_repo
from moto import mock_aws

from attack.outcomes import coded_4xx
from attack.test_bodies import CONTENT_TYPES, ROUTES
from muse_cloud_cli.signer import KeyFile
from muse_cloud_dev.provision import StackNames, provision
from muse_cloud_dev.server import forget_cached_clients

REGION = "us-east-1"


class Target:
    def __init__(self, admin: KeyFile, repo_id: str) -> None:
        self.admin = admin
        self.repo_id = repo_id

    def __call__(self, data: bytes) -> None:
        if len(data) < 2:
            return
        method, path = ROUTES[data[0] % len(ROUTES)]
        content_type = CONTENT_TYPES[data[1] % len(CONTENT_TYPES)]
        answer = call(
            method,
            path.format(repo_id=self.repo_id),
            key=self.admin,
            raw=data[2:],
            headers={"content-type": content_type},
        )
        if answer.status >= 400:
            coded_4xx(answer)


def seed_corpus(directory: Path) -> Path:
    bodies = [
        {"owner": "admin", "name": "tunes"},
        {"handle": "bob", "public_key": "A" * 43},
        {"role": "write"},
        {"mpack_key": "sha256:" + "0" * 64, "size_bytes": 10, "branch": "main", "head": "1" * 64},
        {"mpack_key": "sha256:" + "0" * 64, "branch": "main", "head": "1" * 64},
        {"want": ["1" * 64], "have": []},
    ]
    for route, body in enumerate(bodies):
        (directory / f"json-{route}").write_bytes(bytes([route, 0]) + json.dumps(body).encode())
    return directory


def main() -> None:
    os.environ.update(
        {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "fuzz", "AWS_SECRET_ACCESS_KEY": "fuzz"}
    )
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    names = StackNames.with_prefix("fuzz")
    os.environ.update(names.environment())
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    forget_cached_clients()
    with mock_aws(), tempfile.TemporaryDirectory(prefix="fuzz-bodies-") as corpus:
        provision(boto3.Session(region_name=REGION), names)
        admin = bootstrap_admin()
        target = Target(admin, str(create_repo(admin, "songs")["repoId"]))
        atheris.Setup([*sys.argv, str(seed_corpus(Path(corpus)))], target)
        atheris.Fuzz()


if __name__ == "__main__":
    main()
