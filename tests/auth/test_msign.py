"""The client signer and the server verifier agree, and every malformed header is refused."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from muse_cloud.api.statuses import http_status
from muse_cloud.auth import msign
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import identity_id_for
from muse_cloud_cli import signer
from muse_cloud_cli.signer import KeyFile, new_identity, sign_request

NOW = 1_770_000_000
PATH = "/alice/songs/push/unpack-mpack?dry=1"
BODY = b'{"mpack_key": "incoming/x", "branch": "main"}'


@pytest.fixture
def key() -> KeyFile:
    return new_identity("alice")


def verify(key: KeyFile, header: str, method: str, path: str, body: bytes, now: float) -> None:
    signed = msign.parse_authorization(header)
    assert signed.key_id == key.identity_id
    msign.check_timestamp(signed, now)
    msign.verify_signature(signer.b64url_decode(key.public_key), signed, method, path, body)


def refusal(call: Callable[..., object], *args: object) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(*args)
    assert http_status(caught.value) == 401
    return caught.value


def test_round_trip(key: KeyFile) -> None:
    header = sign_request(key, "post", PATH, BODY, now=NOW)
    verify(key, header, "POST", PATH, BODY, NOW)


def test_canonical_strings_agree() -> None:
    args = ("get", "/a/b/refs?x=1", "123", "n" * 16, b"body")
    assert signer.canonical_string(*args) == msign.canonical_string(*args)
    assert msign.canonical_string(*args).split(b"\n")[:2] == [b"MSIGN-V1", b"GET"]


def test_header_shape(key: KeyFile) -> None:
    header = sign_request(key, "GET", "/x", b"", now=NOW, nonce="abcdefghijklmnopqrstuv")
    assert header.startswith(f'MSign keyId="{key.identity_id}",ts="{NOW}",')
    assert 'nonce="abcdefghijklmnopqrstuv"' in header
    generated = msign.parse_authorization(sign_request(key, "GET", "/x", b""))
    assert len(generated.nonce) >= 22


def test_body_changed_after_signing(key: KeyFile) -> None:
    header = sign_request(key, "POST", PATH, BODY, now=NOW)
    error = refusal(verify, key, header, "POST", PATH, BODY + b" ", NOW)
    assert error.code == "auth_bad_signature"


def test_signature_for_another_path(key: KeyFile) -> None:
    header = sign_request(key, "POST", PATH, BODY, now=NOW)
    other = "/mallory/songs/push/unpack-mpack?dry=1"
    assert refusal(verify, key, header, "POST", other, BODY, NOW).code == "auth_bad_signature"
    no_query = "/alice/songs/push/unpack-mpack"
    assert refusal(verify, key, header, "POST", no_query, BODY, NOW).code == "auth_bad_signature"


def test_signature_for_another_method(key: KeyFile) -> None:
    header = sign_request(key, "POST", PATH, BODY, now=NOW)
    assert refusal(verify, key, header, "PUT", PATH, BODY, NOW).code == "auth_bad_signature"


def test_signature_by_another_key(key: KeyFile) -> None:
    forged = sign_request(new_identity("alice"), "POST", PATH, BODY, now=NOW)
    forged = forged.replace(forged.split('"')[1], key.identity_id)
    assert refusal(verify, key, forged, "POST", PATH, BODY, NOW).code == "auth_bad_signature"


@pytest.mark.parametrize("skew", [301, -301])
def test_stale_timestamp(key: KeyFile, skew: int) -> None:
    header = sign_request(key, "GET", "/x", b"", now=NOW + skew)
    assert refusal(verify, key, header, "GET", "/x", b"", NOW).code == "auth_stale_timestamp"


@pytest.mark.parametrize("skew", [300, -300, 0])
def test_timestamp_inside_window(key: KeyFile, skew: int) -> None:
    verify(key, sign_request(key, "GET", "/x", b"", now=NOW + skew), "GET", "/x", b"", NOW)


GOOD_ID = "sha256:" + "ab" * 32
GOOD_SIG = signer.b64url_encode(bytes(64))


def header_with(**fields: str) -> str:
    values = {"keyId": GOOD_ID, "ts": str(NOW), "nonce": "a" * 16, "sig": GOOD_SIG, **fields}
    return "MSign " + ",".join(f'{name}="{value}"' for name, value in values.items())


def test_parse_accepts_padding_whitespace_and_scheme_case() -> None:
    padded = signer.b64url_encode(bytes(64)) + "=="
    text = header_with(sig=padded).replace("MSign ", "msign  ").replace(",", ", ")
    signed = msign.parse_authorization(text)
    assert (signed.key_id, signed.ts, signed.signature) == (GOOD_ID, str(NOW), bytes(64))


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer abc",
        "MSign",
        header_with().replace("MSign", "Signature"),
        header_with().replace(f',sig="{GOOD_SIG}"', ""),
        header_with().replace('keyId="', 'keyid="'),
        header_with() + ',extra="1"',
        header_with() + f',ts="{NOW}"',
        header_with(keyId="abc"),
        header_with(keyId="sha256:" + "AB" * 32),
        header_with(ts=""),
        header_with(ts="-5"),
        header_with(ts="12.5"),
        header_with(ts="soon"),
        header_with(nonce="a" * 15),
        header_with(nonce="a" * 15 + "!"),
        header_with(nonce="a" * 15 + "="),
        header_with(nonce="a" * 129),
        header_with(sig="not base64!"),
        header_with(sig="a+b/" * 22),
        header_with(sig="A"),
        header_with(sig=signer.b64url_encode(bytes(63))),
        header_with().replace('"', "", 1),
        "MSign " + "x" * 2000,
    ],
)
def test_malformed(header: str) -> None:
    assert refusal(msign.parse_authorization, header).code == "auth_malformed"


def test_bad_public_key_is_a_bad_signature(key: KeyFile) -> None:
    signed = msign.parse_authorization(sign_request(key, "GET", "/x", b"", now=NOW))
    error = refusal(msign.verify_signature, b"short", signed, "GET", "/x", b"")
    assert error.code == "auth_bad_signature"


def test_identity_id_is_hash_of_public_key(key: KeyFile) -> None:
    public = signer.b64url_decode(key.public_key)
    assert len(public) == 32
    assert key.identity_id == identity_id_for(public) == signer.identity_id_for(public)


def test_key_file_round_trip_and_mode(key: KeyFile, tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "identity.json"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyFile.load(path) == key
    assert list(path.parent.iterdir()) == [path]
    replacement = new_identity("alice", is_admin=True, is_agent=True)
    replacement.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyFile.load(path) == replacement


def test_key_file_format_accepts_padding(key: KeyFile, tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    key.save(path)
    data = json.loads(path.read_text())
    assert set(data) == {
        "handle",
        "identity_id",
        "private_key",
        "public_key",
        "is_admin",
        "is_agent",
    }
    assert len(signer.b64url_decode(data["private_key"])) == 32
    for name in ("private_key", "public_key"):
        data[name] += "=" * (-len(data[name]) % 4)
    path.write_text(json.dumps(data))
    assert KeyFile.load(path) == key


def test_key_file_rejects_mismatched_halves(key: KeyFile, tmp_path: Path) -> None:
    other = new_identity("bob")
    with pytest.raises(ValueError, match="does not match"):
        KeyFile(key.handle, key.identity_id, key.private_key, other.public_key)
    with pytest.raises(ValueError, match="identity_id"):
        KeyFile(key.handle, other.identity_id, key.private_key, key.public_key)
    path = tmp_path / "broken.json"
    path.write_text('{"handle": "x"}')
    with pytest.raises(ValueError, match="not a valid key file"):
        KeyFile.load(path)


def test_repr_hides_private_key(key: KeyFile) -> None:
    assert key.private_key not in repr(key)
    assert key.private_key not in str(key)
    assert key.private_key not in f"{key}"
    assert key.identity_id in repr(key)


def test_default_identity_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MUSE_CLOUD_IDENTITY", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    expected = tmp_path / "home" / ".config" / "muse-cloud" / "identity.json"
    assert signer.default_identity_path() == expected
    # Protocol section 5 names no other place: $XDG_CONFIG_HOME does not move the file.
    for config_home in ("relative/ignored", str(tmp_path / "xdg")):
        monkeypatch.setenv("XDG_CONFIG_HOME", config_home)
        assert signer.default_identity_path() == expected
    monkeypatch.setenv("MUSE_CLOUD_IDENTITY", os.fspath(tmp_path / "mine.json"))
    assert signer.default_identity_path() == tmp_path / "mine.json"
