"""Ed25519 signing keys of a node (or hub).

The private key lives in a file only this node's user can read (mode 0600), under the data
directory or at `INTEGRA_SIGNING_KEY_PATH`. The key id is derived from the public key, so anyone
holding the public key can check that the id is honest.
"""

import base64
import hashlib
import os
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_ID_PREFIX = "ed25519:"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


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
    try:
        _public_key(public_b64).verify(unb64(signature_b64), payload)
    except (InvalidSignature, ValueError):
        return False
    return True


@lru_cache(maxsize=1024)
def _public_key(public_b64: str) -> Ed25519PublicKey:
    """A peer's key, decoded once for the thousands of entries it signed (a key that cannot
    be decoded raises ValueError, and is not cached)."""
    return Ed25519PublicKey.from_public_bytes(unb64(public_b64))
