"""The Ed25519 point checks OpenSSL leaves out: non-canonical encodings and small-order points.

OpenSSL refuses S >= L itself, but takes any public key it can decode: with a key whose order
divides 8 (the identity ``01 00..00`` among them), ``R = key, S = 0`` verifies for many or all
messages, and nobody holds a private key for it. A key made from a private seed is never such a
point, so refusing them costs honest users nothing.
"""

from __future__ import annotations

P = 2**255 - 19
D = -121665 * pow(121666, -1, P) % P
SQRT_MINUS_ONE = pow(2, (P - 1) // 4, P)
ENCODED_BYTES = 32

# Extended coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z.
_Point = tuple[int, int, int, int]


def _decode(encoded: bytes) -> _Point | str:
    """The point of a 32-byte encoding (RFC 8032 section 5.1.3), or why it names none."""
    if len(encoded) != ENCODED_BYTES:
        return f"not {ENCODED_BYTES} bytes"
    number = int.from_bytes(encoded, "little")
    x_is_odd = number >> 255
    y = number & ((1 << 255) - 1)
    if y >= P:
        return "a non-canonical encoding (y is not reduced modulo 2^255-19)"
    x_squared = (y * y - 1) * pow(D * y * y + 1, -1, P) % P
    x = pow(x_squared, (P + 3) // 8, P)
    if (x * x - x_squared) % P:
        x = x * SQRT_MINUS_ONE % P
    if (x * x - x_squared) % P:
        return "not a point of the curve"
    if x == 0 and x_is_odd:
        return "a non-canonical encoding (x = 0 with the sign bit set)"
    if x & 1 != x_is_odd:
        x = P - x
    return (x, y, 1, x * y % P)


def _add(a: _Point, b: _Point) -> _Point:
    """RFC 8032's addition, complete on this curve, so it doubles too."""
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    e1 = (y1 - x1) * (y2 - x2) % P
    e2 = (y1 + x1) * (y2 + x2) % P
    c = 2 * D * t1 * t2 % P
    zz = 2 * z1 * z2 % P
    e, f, g, h = e2 - e1, zz - c, zz + c, e2 + e1
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _is_identity(point: _Point) -> bool:
    x, y, z, _ = point
    return x % P == 0 and (y - z) % P == 0


def point_problem(encoded: bytes) -> str | None:
    """Why ``encoded`` must not serve as an Ed25519 public key or signature R, or None.

    The eight points whose order divides 8 are exactly those that three doublings take to
    the identity.
    """
    point = _decode(encoded)
    if isinstance(point, str):
        return point
    multiple = point
    for _ in range(3):
        multiple = _add(multiple, multiple)
    if _is_identity(multiple):
        return "a point of small order (its order divides 8)"
    return None
