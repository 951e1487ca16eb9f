"""Small-order and non-canonical Ed25519 points: the curve check, and the verifier refusing
signatures OpenSSL alone would accept."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from muse_cloud.api.statuses import http_status
from muse_cloud.auth import msign
from muse_cloud.auth.edwards import point_problem
from muse_cloud.domain.errors import ServiceError
from muse_cloud.domain.identities import identity_id_for
from muse_cloud_cli import signer
from muse_cloud_cli.signer import new_identity, sign_request

NOW = 1_770_000_000
PATH = "/alice/songs/refs"
L = 2**252 + 27742317777372353535851937790883648493

# The eight points whose order divides 8, canonically encoded (as listed by libsodium and by
# "Taming the many EdDSAs", Chalkias et al. 2020): identity, order 2, two of order 4, four of 8.
SMALL_ORDER = [
    bytes.fromhex(text)
    for text in (
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    )
]
# The same points spelled otherwise: y + p for y = 0 and y = 1 (either sign), and x = 0 with
# the sign bit set for the identity and the point of order 2.
NON_CANONICAL_SMALL_ORDER = [
    bytes.fromhex(text)
    for text in (
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "0100000000000000000000000000000000000000000000000000000000000080",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    )
]
WEAK_KEYS = SMALL_ORDER + NON_CANONICAL_SMALL_ORDER
IDENTITY = SMALL_ORDER[0]


def _forged(key_raw: bytes, signature: bytes) -> str:
    """An Authorization header for ``key_raw`` carrying ``signature`` as it is."""
    key_id = identity_id_for(key_raw)
    sig = signer.b64url_encode(signature)
    return f'MSign keyId="{key_id}",ts="{NOW}",nonce="{"n" * 16}",sig="{sig}"'


@pytest.mark.parametrize("encoded", SMALL_ORDER, ids=lambda b: b.hex()[:8] + b.hex()[-2:])
def test_every_small_order_point_is_found(encoded: bytes) -> None:
    assert point_problem(encoded) == "a point of small order (its order divides 8)"


@pytest.mark.parametrize(
    "encoded", NON_CANONICAL_SMALL_ORDER, ids=lambda b: b.hex()[:8] + b.hex()[-2:]
)
def test_every_non_canonical_spelling_is_found(encoded: bytes) -> None:
    problem = point_problem(encoded)
    assert problem is not None and problem.startswith("a non-canonical encoding")


def test_keys_made_from_seeds_are_fine_and_off_curve_bytes_are_not() -> None:
    for handle in ("a", "b", "c", "d", "e", "f", "g", "h"):
        assert point_problem(signer.b64url_decode(new_identity(handle).public_key)) is None
    assert point_problem((2).to_bytes(32, "little")) == "not a point of the curve"
    assert point_problem(bytes(31)) == "not 32 bytes"


@pytest.mark.parametrize("weak", WEAK_KEYS, ids=lambda b: b.hex()[:8] + b.hex()[-2:])
def test_a_weak_key_never_verifies(weak: bytes) -> None:
    signed = msign.parse_authorization(_forged(weak, weak + bytes(32)))
    with pytest.raises(ServiceError) as caught:
        msign.verify_signature(weak, signed, "GET", PATH, b"")
    assert (http_status(caught.value), caught.value.code) == (401, "auth_bad_signature")


def test_the_forged_identity_signature_is_refused_though_openssl_takes_it() -> None:
    forged = IDENTITY + bytes(32)
    message = msign.canonical_string("GET", PATH, str(NOW), "n" * 16, b"")
    # The attack is real: OpenSSL accepts R = identity, S = 0 for the identity key.
    Ed25519PublicKey.from_public_bytes(IDENTITY).verify(forged, message)
    signed = msign.parse_authorization(_forged(IDENTITY, forged))
    with pytest.raises(ServiceError) as caught:
        msign.verify_signature(IDENTITY, signed, "GET", PATH, b"")
    assert caught.value.code == "auth_bad_signature"


def test_a_small_order_r_is_refused_with_a_sound_key() -> None:
    key = signer.b64url_decode(new_identity("alice").public_key)
    for r in SMALL_ORDER:
        signed = msign.parse_authorization(_forged(key, r + bytes(32)))
        with pytest.raises(ServiceError) as caught:
            msign.verify_signature(key, signed, "GET", PATH, b"")
        assert caught.value.code == "auth_bad_signature"


def test_a_malleated_s_is_refused_and_the_original_holds() -> None:
    key = new_identity("alice")
    header = sign_request(key, "GET", PATH, b"", now=NOW, nonce="n" * 16)
    signed = msign.parse_authorization(header)
    raw_key = signer.b64url_decode(key.public_key)
    msign.verify_signature(raw_key, signed, "GET", PATH, b"")
    s = int.from_bytes(signed.signature[32:], "little")
    malleated = signed.signature[:32] + (s + L).to_bytes(32, "little")
    # S + L is the same scalar: only the S < L rule (OpenSSL's own) refuses it.
    message = msign.canonical_string("GET", PATH, str(NOW), "n" * 16, b"")
    with pytest.raises(InvalidSignature):
        Ed25519PublicKey.from_public_bytes(raw_key).verify(malleated, message)
    twin = msign.parse_authorization(_forged(raw_key, malleated))
    with pytest.raises(ServiceError) as caught:
        msign.verify_signature(raw_key, twin, "GET", PATH, b"")
    assert caught.value.code == "auth_bad_signature"
