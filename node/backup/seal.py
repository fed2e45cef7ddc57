"""Sealing a backup with a passphrase: scrypt, then AES-256-GCM in 1 MiB chunks, each bound to
its place in the file and the last one marked, so an altered, reordered or cut file never opens.

The header (magic, salt, a check value of the derived key) is authenticated with every chunk; the
check value tells a wrong passphrase from an altered archive.
"""

import hashlib
import hmac
import io
import secrets
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"INTEGRA-BACKUP AES-256-GCM scrypt 1\n"
CHUNK = 1 << 20
TAG = 16
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


class WrongPassphrase(Exception):
    pass


class Altered(Exception):
    pass


def _keys(passphrase: str, salt: bytes) -> tuple[bytes, bytes]:
    derived = Scrypt(salt=salt, length=64, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(
        passphrase.encode()
    )
    check = hashlib.sha256(b"integra-backup-check" + derived[32:]).digest()[:16]
    return derived[:32], check


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class Sealer(io.RawIOBase):
    """A write-only stream that encrypts what it is given, chunk by chunk."""

    def __init__(self, raw: IO[bytes], passphrase: str) -> None:
        super().__init__()
        salt = secrets.token_bytes(16)
        key, check = _keys(passphrase, salt)
        self.header = MAGIC + salt + check
        raw.write(self.header)
        self.raw, self.aead, self.buffer, self.counter = raw, AESGCM(key), bytearray(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.buffer += bytes(data)
        while len(self.buffer) > CHUNK:
            self._emit(bytes(self.buffer[:CHUNK]), last=False)
            del self.buffer[:CHUNK]
        return len(data)

    def finish(self) -> None:
        self._emit(bytes(self.buffer), last=True)
        self.buffer.clear()

    def _emit(self, chunk: bytes, *, last: bool) -> None:
        self.raw.write(self.aead.encrypt(_nonce(self.counter, last), chunk, self.header))
        self.counter += 1


class Opener(io.RawIOBase):
    """A read-only stream of what a sealed archive holds; a wrong passphrase, an altered chunk
    or a cut file is refused before its bytes are given out."""

    def __init__(self, raw: IO[bytes], passphrase: str) -> None:
        super().__init__()
        header = raw.read(len(MAGIC) + 32)
        salt, check = header[len(MAGIC) : len(MAGIC) + 16], header[len(MAGIC) + 16 :]
        key, expected = _keys(passphrase, salt)
        if not hmac.compare_digest(check, expected):
            raise WrongPassphrase
        self.raw, self.aead, self.header, self.counter = raw, AESGCM(key), header, 0
        self.pending = raw.read(CHUNK + TAG)
        self.plain, self.offset, self.done = b"", 0, False

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while self.offset == len(self.plain) and not self.done:
            self._next()
        size = min(len(target), len(self.plain) - self.offset)
        target[:size] = self.plain[self.offset : self.offset + size]
        self.offset += size
        return size

    def _next(self) -> None:
        chunk, self.pending = self.pending, self.raw.read(CHUNK + TAG)
        last = not self.pending
        try:
            self.plain = self.aead.decrypt(_nonce(self.counter, last), chunk, self.header)
        except InvalidTag:
            raise Altered from None
        self.offset = 0
        self.counter += 1
        self.done = last
