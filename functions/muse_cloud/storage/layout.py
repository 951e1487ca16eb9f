"""Every S3 key and prefix of the bucket, in one place (as ``keys`` is for the table).

Everything of a repository sits under a prefix ending in ``<repo_id>/``, so deleting a
repository deletes ``repo_prefixes(repo_id)`` and nothing else. Lifecycle rules in
template.yaml expire ``fetch/`` after a day, ``staging/`` after a day, and uploads still tagged
``muse-state=incoming``.

| prefix                        | what                                                      |
|-------------------------------|-----------------------------------------------------------|
| incoming/<repo>/<sha>.mpack   | uploaded packs: the home of their objects once ingested   |
| repos/<repo>/packs/           | pack indexes too large for their PACK item                |
| repos/<repo>/midx/            | multi-pack indexes, named by content                      |
| repos/<repo>/objects/         | large objects copied out of their pack, served by URL     |
| repos/<repo>/<kind>/          | values too large for an item (commits, deltas, checkpoints)|
| fetch/<repo>/<sha>.mpack      | packs built for a fetch or clone                          |
| fetch/<repo>/requests/        | which fetch pack answers which wants and haves            |
| fetch/<repo>/answers/         | JSON answers too large for a Lambda response              |
| fetch/<repo>/builds/          | fetch packs to build in the background, and their failures |
| staging/<repo>/<object_id>    | wire v0 objects uploaded ahead of their push              |
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

UPLOADS = "incoming/"
REPOSITORIES = "repos/"
FETCHES = "fetch/"
STAGING = "staging/"
_PACK_SUFFIX = ".mpack"
# template.yaml's bucket notification sends what ends so under fetch/ to the unpack function.
FETCH_BUILD_SUFFIX = ".build"
# The tag that tells the lifecycle rule an upload was never ingested (and may expire).
STATE_TAG = "muse-state"


def repo_prefixes(repo_id: str) -> tuple[str, ...]:
    """Every prefix holding a repository's bytes. ApiFunction's policy in template.yaml must
    allow s3:DeleteObject on each of them."""
    return tuple(f"{top}{repo_id}/" for top in (UPLOADS, REPOSITORIES, FETCHES, STAGING))


@dataclass(frozen=True)
class UploadKey:
    """Where a pack is uploaded, and the push it belongs to: ``incoming/<repo_id>/<sha>.mpack``."""

    repo_id: str
    mpack_hex: str

    @property
    def s3_key(self) -> str:
        return f"{UPLOADS}{self.repo_id}/{self.mpack_hex}{_PACK_SUFFIX}"

    @property
    def mpack_key(self) -> str:
        return f"sha256:{self.mpack_hex}"

    @classmethod
    def parse(cls, s3_key: str) -> UploadKey | None:
        match _segments(s3_key, UPLOADS, _PACK_SUFFIX):
            case [repo_id, mpack_hex]:
                return cls(repo_id=repo_id, mpack_hex=mpack_hex)
        return None


@dataclass(frozen=True)
class FetchBuildKey:
    """A fetch pack the API asked to be built in the background (its build outlasts an API
    call): ``fetch/<repo_id>/builds/<request>.build``, holding what to pack."""

    repo_id: str
    request: str

    @property
    def s3_key(self) -> str:
        return f"{FETCHES}{self.repo_id}/builds/{self.request}{FETCH_BUILD_SUFFIX}"

    @property
    def failure_key(self) -> str:
        """Why the build failed, for the callers polling it (no notification follows it)."""
        return f"{FETCHES}{self.repo_id}/builds/{self.request}.failed"

    @classmethod
    def parse(cls, s3_key: str) -> FetchBuildKey | None:
        match _segments(s3_key, FETCHES, FETCH_BUILD_SUFFIX):
            case [repo_id, "builds", request]:
                return cls(repo_id=repo_id, request=request)
        return None


def _segments(s3_key: str, top: str, suffix: str) -> list[str]:
    """The key's segments between ``top`` and ``suffix``; none for a key outside them."""
    if not s3_key.startswith(top) or not s3_key.endswith(suffix):
        return []
    return s3_key[len(top) : -len(suffix)].split("/")


def large_value(repo_id: str, kind: str, item_id: str) -> str:
    return f"{REPOSITORIES}{repo_id}/{kind}/{item_id}.msgpack"


def pack_index(repo_id: str, mpack_hex: str, digest: str) -> str:
    return f"{REPOSITORIES}{repo_id}/packs/{mpack_hex}.{digest}.idx"


def multi_pack_index(repo_id: str, content: bytes) -> str:
    return f"{REPOSITORIES}{repo_id}/midx/{hashlib.sha256(content).hexdigest()}.midx"


def copied_object(repo_id: str, object_id: str) -> str:
    return f"{REPOSITORIES}{repo_id}/objects/{object_id}"


def fetch_pack(repo_id: str, mpack_hex: str) -> str:
    return f"{FETCHES}{repo_id}/{mpack_hex}{_PACK_SUFFIX}"


def fetch_request(repo_id: str, request_hex: str) -> str:
    return f"{FETCHES}{repo_id}/requests/{request_hex}.json"


def answer(repo_id: str, document: bytes) -> str:
    return f"{FETCHES}{repo_id}/answers/{hashlib.sha256(document).hexdigest()}.json"


def staged_object(repo_id: str, object_id: str) -> str:
    return f"{STAGING}{repo_id}/{object_id}"
