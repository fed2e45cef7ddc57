"""Ed25519 signing keys of a node (or hub).

The private key lives in a file only this node's user can read (mode 0600), under the data
directory or at `INTEGRA_SIGNING_KEY_PATH`. The key id is derived from the public key, so anyone
holding the public key can check that the id is honest.
"""

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_ID_PREFIX = "ed25519:"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def unb64(text: str) -> bytes:
    """The bytes of the one spelling `b64` writes: unpadded base64url with zero trailing bits
    and nothing after. Any other spelling of the same bytes raises ValueError, so a key or a
    signature has exactly one text (a relayed entry cannot be re-spelt into a new one)."""
    if not _B64URL.fullmatch(text):
        raise ValueError("not unpadded base64url (A-Z a-z 0-9 - _, no padding)")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64(raw) != text:
        raise ValueError("not the canonical base64url spelling (non-zero trailing bits)")
    return raw


# Edwards25519: -x^2 + y^2 = 1 + d x^2 y^2 over GF(p), base point order L.
_P = 2**255 - 19
_D = -121665 * pow(121666, -1, _P) % _P
_L = 2**252 + 27742317777372353535851937790883648493
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)


def public_key_raw(text: str) -> bytes:
    """The 32 bytes of an Ed25519 public key given as base64url, refusing a key no honest
    key generation makes: a non-canonical spelling or encoding (y >= p, x = 0 with the sign
    bit set), a point off the curve, and a point outside the prime-order subgroup (the eight
    small-order points and every point with a small-order component), with which a signer
    could make one signature valid for several messages or keys. Raises ValueError saying
    which."""
    raw = unb64(text)
    if len(raw) != 32:
        raise ValueError(f"32 bytes expected, not {len(raw)}")
    problem = _point_problem(raw)
    if problem:
        raise ValueError(f"weak key: {problem}")
    return raw


def _point_problem(raw: bytes) -> str | None:
    encoded = int.from_bytes(raw, "little")
    y, sign = encoded & ((1 << 255) - 1), encoded >> 255
    if y >= _P:
        return "non-canonical encoding (y >= p)"
    x = _recover_x(y, sign)
    if x is None:
        return "not a point of the curve (or x = 0 with the sign bit set)"
    point = (x, y, 1, x * y % _P)
    if _is_identity(point):
        return "the identity point (small order)"
    if not _is_identity(_times(point, _L)):
        return "a point of small or mixed order (not in the prime-order subgroup)"
    return None


def _recover_x(y: int, sign: int) -> int | None:
    """RFC 8032 section 5.1.3, step 2-4."""
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    if (v * x * x - u) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (v * x * x - u) % _P != 0:
        return None
    if x == 0 and sign:
        return None
    return _P - x if x & 1 != sign else x


def _add(a: _Point, b: _Point) -> _Point:
    """Unified addition in extended coordinates (RFC 8032 section 5.1.4)."""
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa, bb = (y1 - x1) * (y2 - x2) % _P, (y1 + x1) * (y2 + x2) % _P
    cc, dd = 2 * _D * t1 * t2 % _P, 2 * z1 * z2 % _P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _times(point: _Point, scalar: int) -> _Point:
    result: _Point = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _is_identity(point: _Point) -> bool:
    x, y, z, _ = point
    return x % _P == 0 and (y - z) % _P == 0


def key_id_of(public_raw: bytes) -> str:
    return KEY_ID_PREFIX + hashlib.sha256(public_raw).hexdigest()[:32]


def fingerprint(key_id: str) -> str:
    """The key id in groups of four, for reading aloud when keys are exchanged out of band."""
    digits = key_id.removeprefix(KEY_ID_PREFIX)
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey

    @cached_property  # derived once: a hub writes the key id into every entry it relays
    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def public_b64(self) -> str:
        return b64(self.public_raw)

    @cached_property
    def key_id(self) -> str:
        return key_id_of(self.public_raw)

    def sign(self, payload: bytes) -> str:
        return b64(self.private.sign(payload))


def generate() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate())


def save(key: SigningKey, path: Path) -> None:
    """Write the private key so that only its owner can read it, never overwriting one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


def load(path: Path) -> SigningKey:
    if path.stat().st_mode & 0o077:
        raise PermissionError(f"{path} is readable by others: chmod 600 it")
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return SigningKey(private)


def verify(public_b64: str, payload: bytes, signature_b64: str) -> bool:
    """Whether the signature, in its one spelling (64 bytes, canonical base64url), is the
    key's over the payload; a weak key (see `public_key_raw`) verifies nothing."""
    try:
        signature = unb64(signature_b64)
        if len(signature) != 64:
            return False
        _public_key(public_b64).verify(signature, payload)
    except (InvalidSignature, ValueError):
        return False
    return True


@lru_cache(maxsize=1024)
def _public_key(public_b64: str) -> Ed25519PublicKey:
    """A peer's key, decoded and checked once for the thousands of entries it signed (a key
    that cannot be decoded, or is weak, raises ValueError, and is not cached)."""
    return Ed25519PublicKey.from_public_bytes(public_key_raw(public_b64))
