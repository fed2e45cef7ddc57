"""Opaque cursors for keyset pagination."""

import base64
import binascii
import json
import math
from typing import Any

from node.core.errors import InvalidInput


def encode_cursor(key: list[Any]) -> str:
    raw = json.dumps(key, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidInput("cursor", "not a cursor this server issued") from None
    if not isinstance(key, list) or len(key) != arity or not all(map(_plain, key)):
        raise InvalidInput("cursor", "not a cursor this server issued")
    return key


def _plain(value: Any) -> bool:
    """A value the database can take: short, and text that encodes (no lone surrogates)."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int):
        return abs(value) < 2**62
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return len(value) <= 8 and all(map(_plain, value))
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return len(value) <= 1000 and "\x00" not in value
    return False
