"""Hostile request bodies on every route that takes one, signed by an admin so that they reach
the body decoder and the routes' validation: a coded 4xx (or a 2xx), never a 5xx."""

from __future__ import annotations

import json

import msgpack
import pytest
from api.client import call
from api.test_endpoints import bootstrap_admin, create_repo
from hypothesis import given
from hypothesis import strategies as st

from muse_cloud_cli.signer import KeyFile
from muse_cloud_dev.provision import Provisioned

from .outcomes import coded_4xx
from .profile import attack_settings

ROUTES = [
    ("POST", "/api/repos"),
    ("POST", "/api/identities"),
    ("PUT", "/api/repos/{repo_id}/collaborators/bob"),
    ("POST", "/admin/songs/push/mpack-presign"),
    ("POST", "/admin/songs/push/unpack-mpack"),
    ("POST", "/admin/songs/fetch/mpack"),
]
JSON = "application/json"
MSGPACK = "application/x-msgpack"
CONTENT_TYPES = [
    JSON,
    MSGPACK,
    "text/plain",
    "",
    f"{JSON}; charset=latin-1",
    "application/xml",
    "multipart/form-data",
    "application/x-www-form-urlencoded",
]
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
# Field names the routes know, so generated maps reach the field validators too.
FIELDS = ["owner", "name", "visibility", "handle", "public_key", "role", "mpack_key",
          "size_bytes", "branch", "head", "force", "want", "have"]  # fmt: skip
REQUEST_LIKE = st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=6)


@pytest.fixture
def admin(stack: Provisioned) -> tuple[KeyFile, str]:
    key = bootstrap_admin()
    return key, str(create_repo(key, "songs")["repoId"])


def send(admin: tuple[KeyFile, str], route: int, body: bytes, content_type: str) -> None:
    key, repo_id = admin
    method, path = ROUTES[route]
    target = path.format(repo_id=repo_id)
    answer = call(method, target, key=key, raw=body, headers={"content-type": content_type})
    if answer.status >= 400:
        coded_4xx(answer)


ROUTE = st.integers(min_value=0, max_value=len(ROUTES) - 1)


@attack_settings(30)
@given(route=ROUTE, value=REQUEST_LIKE | JSON_VALUES)
def test_well_formed_json_of_any_shape(
    admin: tuple[KeyFile, str], route: int, value: object
) -> None:
    send(admin, route, json.dumps(value).encode(), JSON)


@attack_settings(30)
@given(route=ROUTE, value=REQUEST_LIKE | JSON_VALUES | st.binary(max_size=8))
def test_well_formed_msgpack_of_any_shape(
    admin: tuple[KeyFile, str], route: int, value: object
) -> None:
    send(admin, route, msgpack.packb(value, use_bin_type=True), MSGPACK)


@attack_settings(30)
@given(route=ROUTE, body=st.binary(max_size=64), content_type=st.sampled_from(CONTENT_TYPES))
def test_arbitrary_bytes_under_any_content_type(
    admin: tuple[KeyFile, str], route: int, body: bytes, content_type: str
) -> None:
    send(admin, route, body, content_type)


CASES = {
    "not_utf8": (b'{"owner": "\xff"}', JSON),
    "json_nested_990": (b'{"owner": ' + b"[" * 990 + b"]" * 990 + b"}", JSON),
    "json_huge_int": (b'{"size_bytes": 1' + b"0" * 4400 + b"}", JSON),
    "json_lone_surrogate": (
        b'{"branch": "\\ud800", "mpack_key": "sha256:' + b"0" * 64 + b'", "size_bytes": 9}',
        JSON,
    ),
    "msgpack_nested_990": (b"\x81\xa5owner" + b"\x91" * 990 + b"\xc0", MSGPACK),
    "msgpack_not_utf8": (b"\x81\xa5owner\xa1\xff", MSGPACK),
    "xml": (b"<owner>admin</owner>", "application/xml"),
    "form": (b"owner=admin", "application/x-www-form-urlencoded"),
    "multipart_without_boundary": (b'{"owner": "admin"}', "multipart/form-data"),
    "json_truncated": (b'{"owner": "adm', JSON),
    "empty": (b"", JSON),
}


def _answers_without_a_code(admin: tuple[KeyFile, str], cases: list[str]) -> list[str]:
    """Every route with every case: the ones not answered with a coded 4xx (or a 2xx)."""
    key, repo_id = admin
    wrong = []
    for case in cases:
        body, content_type = CASES[case]
        for method, path in ROUTES:
            target = path.format(repo_id=repo_id)
            answer = call(method, target, key=key, raw=body, headers={"content-type": content_type})
            try:
                if answer.status >= 400:
                    coded_4xx(answer)
            except AssertionError:
                wrong.append(f"{case} {method} {path}: {answer.status} {answer.body[:80]!r}")
    return wrong


def test_malformed_bodies_are_coded_4xx(admin: tuple[KeyFile, str]) -> None:
    wrong = _answers_without_a_code(admin, sorted(CASES))
    print(f"\nbodies: {len(wrong)} of {len(CASES) * len(ROUTES)} answered without a code")
    assert not wrong, wrong
