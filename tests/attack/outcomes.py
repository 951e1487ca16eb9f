"""What every attack must end in: verified, or refused with a coded 4xx that leaves nothing
behind; and, whatever happened, refs that only point at history that can be read back whole."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import requests
from api.client import Answer, call
from ingest.test_event_path import history_items

from muse_cloud.api.statuses import http_status
from muse_cloud.domain.errors import ServiceError
from muse_cloud_cli.signer import KeyFile
from muse_cloud_dev.server import stores
from muse_core.errors import MuseError
from muse_core.mpack import mpack_key
from muse_core.verify import EmptyReceiver, verify_mpack

VERIFIED = "verified"


def core_outcome(data: bytes) -> str:
    """``verified`` or the refusal's code; any other exception fails the caller's test."""
    try:
        verify_mpack(data, EmptyReceiver())
    except MuseError as error:
        assert isinstance(error.code, str) and error.code, error
        assert isinstance(error.message, str) and error.message, error
        assert error.item is None or isinstance(error.item, str), error
        json.dumps(error.as_dict())
        status = http_status(ServiceError.from_core(error))
        assert 400 <= status < 500, (status, error.as_dict())
        return error.code
    return VERIFIED


def coded_4xx(answer: Answer) -> str:
    """The answer's code, asserting a 4xx with ``{code, message, item}``."""
    assert 400 <= answer.status < 500, (answer.status, answer.body[:500])
    body = answer.json()
    assert set(body) == {"code", "message", "item"}, body
    assert isinstance(body["code"], str) and body["code"], body
    assert isinstance(body["message"], str) and body["message"], body
    return str(body["code"])


def assert_refs_whole(repo_id: str) -> None:
    """Every ref names a commit whose ancestors, snapshots and objects are all readable."""
    repo_stores = stores()
    pending = list(stores().refs.heads(repo_id).values())
    seen: set[str] = set()
    while pending:
        commit_id = pending.pop()
        if commit_id in seen:
            continue
        seen.add(commit_id)
        stored = repo_stores.commits.get(repo_id, commit_id)
        assert stored is not None, f"a ref reaches {commit_id}, which is not stored"
        manifest = repo_stores.snapshots.manifest(repo_id, stored.record.snapshot_id)
        assert manifest is not None, f"{commit_id}'s snapshot is not stored"
        wanted = set(manifest.values())
        missing = wanted - repo_stores.pack_index.known(repo_id, wanted)
        assert not missing, f"{commit_id}'s snapshot names missing objects {sorted(missing)}"
        pending.extend(stored.record.parent_ids)


@dataclass
class HttpPush:
    """One push through the API as a client makes it: presign, PUT to the URL, unpack-mpack."""

    answers: list[Answer]

    @property
    def last(self) -> Answer:
        return self.answers[-1]


def push_over_http(key: KeyFile, slug: str, data: bytes, unpack: dict[str, Any]) -> HttpPush:
    """Stops at the first refusal, as a client does."""
    digest = mpack_key(data)
    presign = call(
        "POST",
        f"/{slug}/push/mpack-presign",
        {"mpack_key": digest, "size_bytes": len(data)},
        key,
    )
    done = HttpPush([presign])
    if presign.status != 200:
        return done
    grant = presign.json()
    put = requests.put(grant["upload_url"], data=data, headers=grant["headers"], timeout=30)
    assert put.status_code == 200, put.text
    done.answers.append(
        call("POST", f"/{slug}/push/unpack-mpack", {**unpack, "mpack_key": digest}, key)
    )
    return done


def fresh_repo(owner: str, name: str) -> tuple[str, str]:
    """A new empty public repository: (repo_id, slug)."""
    repo = stores().repos.create(owner, name, "public")
    return repo.repo_id, f"{owner}/{name}"


def assert_nothing_left(repo_id: str) -> None:
    """A refused push into an empty repository left no commit, snapshot, object or ref."""
    left = history_items(repo_id)
    assert not left, f"a refused pack left {sorted(left)[:5]}"
