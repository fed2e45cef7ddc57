"""Opaque cursors for keyset pagination."""

import base64
import binascii
import json
from typing import Any

from node.errors import InvalidInput


def encode_cursor(key: list[Any]) -> str:
    raw = json.dumps(key, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor", "not a cursor this server issued") from None
    if not isinstance(key, list) or len(key) != arity:
        raise InvalidInput("cursor", "not a cursor this server issued")
    return key
