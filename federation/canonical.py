"""RFC 8785 JSON Canonicalization Scheme, and a strict parser for what arrives from peers.

Signatures are over canonical bytes, so any copy of a record can be verified on its own. The
federation schema has no floats (their canonical form is a trap); integers stay within the
range every JSON implementation reads exactly.
"""

import json
import re
from typing import Any

import rfc8785

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 32


class CanonicalError(ValueError):
    """The value cannot be canonicalised, or the bytes are not acceptable JSON."""


ASTRAL = re.compile(rb"[\xf0-\xf4]")  # the lead byte of a character above U+FFFF in UTF-8
# What json.dumps(value, sort_keys=True, ...) builds on every call, built once.
ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical(value: Any, *, checked: bool = False) -> bytes:
    """RFC 8785 bytes of a JSON value without floats (`checked`: `parse_strict` or this
    function already vetted the value, so the walk over it is skipped).

    For such values the standard library's C encoder (sorted keys, no spaces, no ASCII
    escaping) writes exactly the RFC 8785 form: the same short escapes, other control
    characters as lowercase \\u00xx, everything else as UTF-8. Only key order can differ, for
    keys with characters above U+FFFF (RFC 8785 sorts by UTF-16 code unit): any text with such
    characters goes to the reference implementation. A property test holds the two to the same
    bytes."""
    if not checked:
        _check(value, 0)
    try:
        data = ENCODER.encode(value).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate is not Unicode text
        raise CanonicalError(str(exc)) from None
    except (TypeError, ValueError) as exc:
        raise CanonicalError(str(exc)) from None
    if ASTRAL.search(data) is None:
        return data
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as exc:
        raise CanonicalError(str(exc)) from None


def as_received(value: Any) -> bytes:
    """The canonical bytes of a value `parse_strict` returned, even one holding a lone
    surrogate (which JSON can escape but Unicode text cannot hold): such a surrogate is written
    as the escape it arrived as (lowercase \\udxxx, as RFC 8785 writes control characters).
    The Merkle leaf of an entry that is then refused for it stays the one its peer hashed, so
    the frontier (and every later entry's check against the signed root) stays right. Nothing
    is ever signed in this form: `canonical` refuses lone surrogates."""
    try:
        return canonical(value, checked=True)
    except CanonicalError:
        return ENCODER.encode(value).encode("utf-8", "backslashreplace")


def _check(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CanonicalError(f"nested deeper than {MAX_DEPTH}")
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, float):
        raise CanonicalError("floats are not allowed in the federation schema")
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalError("integer outside the exactly representable range")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalError("object keys must be strings")
            _check(item, depth + 1)
        return
    if isinstance(value, list):
        for item in value:
            _check(item, depth + 1)
        return
    raise CanonicalError(f"{type(value).__name__} is not a JSON value")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise CanonicalError(f"duplicate key {key!r}")
            seen.add(key)
    return value


def _safe_int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise CanonicalError("integer outside the exactly representable range")
    return value


def _refuse_constant(name: str) -> Any:
    raise CanonicalError(f"{name} is not JSON")


STRING = re.compile(rb'"[^"]*"')  # on the skeleton, where no string holds a quote
INNERMOST = re.compile(rb"\[\]|\{\}")  # one pass removes one level, whatever its kind
ESCAPE = re.compile(rb"\\.", re.DOTALL)  # a backslash and what it escapes (\u: its "u")
NOT_SKELETON = bytes(b for b in range(256) if b not in b'"[]{}')


def _check_depth(data: bytes) -> None:
    """Containers nested at most MAX_DEPTH deep, found on the text's skeleton: escapes taken
    out (the text parsed, so every backslash in it opens one), then every byte but quotes and
    brackets, then strings; each pass then removes the innermost containers."""
    skeleton = ESCAPE.sub(b"", data).translate(None, NOT_SKELETON)
    # Two quotes in a row end a string and open the next, or make an empty one: either way
    # they go without moving a bracket in or out of a string.
    skeleton = STRING.sub(b"", skeleton.replace(b'""', b""))
    for _ in range(MAX_DEPTH):
        if not skeleton:
            return
        skeleton = INNERMOST.sub(b"", skeleton)
    if skeleton:
        raise CanonicalError(f"nested deeper than {MAX_DEPTH}")


def parse_strict(data: bytes, *, max_bytes: int) -> Any:
    """Parse bytes from a peer: size-limited, no duplicate keys, no floats, integers within
    the exactly representable range, containers nested at most MAX_DEPTH deep. What it
    returns needs no further `_check` (`canonical(value, checked=True)`)."""
    if len(data) > max_bytes:
        raise CanonicalError(f"larger than {max_bytes} bytes")
    try:
        text = data.decode("utf-8")
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_int=_safe_int,
            parse_float=lambda s: _refuse_constant(f"the float {s[:20]}"),
            parse_constant=_refuse_constant,
        )
        _check_depth(data)  # only on text that parsed: every backslash opens an escape
        return value
    except CanonicalError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CanonicalError(f"not JSON: {type(exc).__name__}") from None
