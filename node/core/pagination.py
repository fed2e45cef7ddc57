"""Opaque cursors for keyset pagination, and the query parameters list routes share."""

import base64
import binascii
import json
import math
import uuid
from typing import Annotated, Any

from pydantic import StringConstraints

from node.core.errors import InvalidInput

# A query parameter free of control characters (tab, newline and return are allowed).
PRINTABLE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"
CountryParam = Annotated[str, StringConstraints(pattern="^[A-Za-z]{2}$")]


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


def decode_keyset(cursor: str | None) -> tuple[str, str] | None:
    """The (sort key, row id) a list page's cursor carries; None for the first page."""
    if not cursor:
        return None
    sort_key, row_id = decode_cursor(cursor, 2)
    try:
        uuid.UUID(str(row_id))
    except ValueError:
        raise InvalidInput("cursor", "not a cursor this server issued") from None
    if not isinstance(sort_key, str) or "\x00" in sort_key:
        raise InvalidInput("cursor", "not a cursor this server issued")
    return sort_key, str(row_id)
