"""Ed25519 as the federation checks it: Project Wycheproof's verification vectors, one spelling
of every key and signature, and the weak keys an operator could be handed at enrolment."""

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from federation import keys, trust
from federation.canonical import canonical
from federation.models import Peer, PeerKey
from federation.sync import directory
from node.core.auth import system_principal
from node.core.errors import AppError, Conflict

VECTORS = Path(__file__).parent / "vectors" / "wycheproof" / "ed25519_test.json"
BY = system_principal("test-wycheproof")


def _cases() -> list[Any]:
    document = json.loads(VECTORS.read_text())
    return [
        pytest.param(group["publicKey"]["pk"], test, id=f"tc{test['tcId']}-{test['result']}")
        for group in document["testGroups"]
        for test in group["tests"]
    ]


def test_the_vendored_vectors_are_all_there() -> None:
    document = json.loads(VECTORS.read_text())
    assert len(_cases()) == document["numberOfTests"] == 151


@pytest.mark.parametrize(("public_hex", "test"), _cases())
def test_wycheproof_ed25519(public_hex: str, test: dict[str, Any]) -> None:
    public = keys.b64(bytes.fromhex(public_hex))
    verified = keys.verify(public, bytes.fromhex(test["msg"]), keys.b64(bytes.fromhex(test["sig"])))
    assert verified is (test["result"] == "valid"), (test["comment"], test["flags"])


def test_every_wycheproof_key_is_accepted_at_enrolment() -> None:
    document = json.loads(VECTORS.read_text())
    texts = [keys.b64(bytes.fromhex(g["publicKey"]["pk"])) for g in document["testGroups"]]
    assert len(trust.parse_public_keys(texts)) == len(texts)


def _signed() -> tuple[keys.SigningKey, bytes, str]:
    key = keys.generate()
    payload = b'{"origin":"EL","seq":1}'
    return key, payload, key.sign(payload)


def _respellings(text: str) -> list[str]:
    """Other spellings of the same bytes that lenient base64 decoders accept."""
    raw = keys.unb64(text)
    spellings = [
        text + "=" * (-len(text) % 4),  # padded
        base64.b64encode(raw).decode(),  # standard alphabet, padded
        base64.b64encode(raw).decode().rstrip("="),  # standard alphabet
        text + "\n",
        " " + text,
        text + "A",  # trailing data (also an impossible length)
        text + "AAAA",  # trailing data, a whole quantum
    ]
    # Non-zero trailing bits: 64 or 32 bytes leave 2 or 4 unused bits in the last character.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(text[-1])
    spellings += [text[:-1] + alphabet[last | bit] for bit in (1, 2) if last | bit != last]
    return [s for s in spellings if s != text]


def test_a_signature_has_one_spelling() -> None:
    key, payload, signature = _signed()
    assert keys.verify(key.public_b64, payload, signature)
    others = _respellings(signature)
    assert len(others) >= 8
    for other in others:
        # Each decodes, leniently, to the same signature: only the spelling is refused.
        assert not keys.verify(key.public_b64, payload, other), repr(other)


def test_a_public_key_has_one_spelling() -> None:
    key, payload, signature = _signed()
    for other in _respellings(key.public_b64):
        assert not keys.verify(other, payload, signature), repr(other)
        if other.strip() != other:
            continue  # an operator's pasted key may carry a newline: enrolment strips it
        with pytest.raises(AppError, match="not a usable Ed25519 public key"):
            trust.parse_public_keys([other])


def test_signatures_of_the_wrong_length_are_refused() -> None:
    key, payload, signature = _signed()
    raw = keys.unb64(signature)
    for wrong in (raw[:63], raw + b"\0", raw + raw, b""):
        assert not keys.verify(key.public_b64, payload, keys.b64(wrong))


# The eight points of small order, and non-canonical encodings (y >= p, or x = 0 with the sign
# bit set), as listed in "Taming the many EdDSAs" (Chalkias, Garillot, Nikolaenko, 2020).
SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",  # order 1
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
    "0000000000000000000000000000000000000000000000000000000000000080",  # order 4
    "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  # order 8
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",  # order 8
]
NON_CANONICAL = [
    "0100000000000000000000000000000000000000000000000000000000000080",  # y = 1, x = 0, sign 1
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p + 1
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  # y = p + 1, sign 1
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = 2^255 - 1
]
# A point on the curve whose y has no x: y = 2 is not on edwards25519.
OFF_CURVE = "0200000000000000000000000000000000000000000000000000000000000000"


@pytest.mark.parametrize("public_hex", SMALL_ORDER + NON_CANONICAL + [OFF_CURVE])
def test_weak_keys_are_refused_at_enrolment_with_the_reason(public_hex: str) -> None:
    text = keys.b64(bytes.fromhex(public_hex))
    with pytest.raises(AppError, match="weak key") as refused:
        trust.parse_public_keys([text])
    assert "--key" in str(refused.value)


def _forgery(public_hex: str, payload: bytes) -> str | None:
    """For a small-order key A, a signature (R, S = 0) that passes the library's verification
    equation when R = -hA, itself a small-order point (h depends on R: about one payload in
    two has such an R, and a forger varies a timestamp until it does). Base64url, or None."""
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
    for r in SMALL_ORDER:
        signature = bytes.fromhex(r) + bytes(32)
        try:
            public.verify(signature, payload)  # the library alone, without the key check
        except InvalidSignature:
            continue
        return keys.b64(signature)
    return None


@pytest.mark.parametrize("public_hex", SMALL_ORDER)
def test_a_small_order_key_verifies_nothing(public_hex: str) -> None:
    """The library accepts signatures anyone can make, no private key needed, for a
    small-order key; the federation refuses the key itself."""
    public = keys.b64(bytes.fromhex(public_hex))
    payloads = [f'{{"origin":"PT","seq":{seq}}}'.encode() for seq in range(40)]
    forged = [(p, f) for p in payloads if (f := _forgery(public_hex, p)) is not None]
    assert forged, "no forgery found: this test would check nothing"
    assert not any(keys.verify(public, payload, signature) for payload, signature in forged)


def test_a_key_with_a_small_order_component_is_refused() -> None:
    """An honest key is a multiple of the base point: one plus a point of order 8 is not."""
    honest = keys.generate().public_raw
    mixed = keys._add(_decode(honest), _decode(bytes.fromhex(SMALL_ORDER[4])))
    with pytest.raises(AppError, match="small or mixed order"):
        trust.parse_public_keys([keys.b64(_encode(mixed))])


def _decode(raw: bytes) -> tuple[int, int, int, int]:
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    x = keys._recover_x(y, raw[31] >> 7)
    assert x is not None
    return (x, y, 1, x * y % keys._P)


def _encode(point: tuple[int, int, int, int]) -> bytes:
    x, y, z, _ = point
    inverse = pow(z, -1, keys._P)
    x, y = x * inverse % keys._P, y * inverse % keys._P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _rotation_to(public_hex: str, previous: keys.SigningKey) -> dict[str, Any]:
    """A key-rotation announcement, signed by the trusted `previous` key, to a small-order key
    with a forged "signature" of the new key that the library alone accepts."""
    for second in range(60):
        statement = {
            "type": "key-rotation",
            "origin": "PT",
            "previous": previous.key_id,
            "key": keys.key_id_of(bytes.fromhex(public_hex)),
            "public_key": keys.b64(bytes.fromhex(public_hex)),
            "seq": 3,
            "time": f"2026-12-01T10:00:{second:02d}Z",
        }
        signed = canonical(statement)
        forged = _forgery(public_hex, signed)
        if forged is not None:
            signatures = [
                {"key": previous.key_id, "sig": previous.sign(signed)},
                {"key": statement["key"], "sig": forged},
            ]
            return {"statement": statement, "signatures": signatures}
    raise AssertionError(f"no forgery found for {public_hex}")


@pytest.mark.parametrize("public_hex", SMALL_ORDER)
def test_a_rotation_to_a_small_order_key_is_not_taken_in(public_hex: str) -> None:
    previous = keys.generate()
    peer = Peer(origin="PT", base_url="https://pt.example")
    trusted = {previous.key_id: PeerKey(key_id=previous.key_id, public_key=previous.public_b64)}
    row = {"key_id": "new", "announcement": _rotation_to(public_hex, previous)}
    assert directory._rotation(row, peer, trusted) is None


@pytest.mark.anyio
async def test_a_weak_key_stored_before_awaits_confirmation_in_vain(session: AsyncSession) -> None:
    peer = Peer(origin="PT", base_url="https://pt.example")
    session.add(peer)
    await session.flush()
    weak = keys.b64(bytes.fromhex(SMALL_ORDER[4]))
    key_id = keys.key_id_of(bytes.fromhex(SMALL_ORDER[4]))
    session.add(
        PeerKey(key_id=key_id, peer_id=peer.id, public_key=weak, awaiting_confirmation=True)
    )
    await session.flush()
    with pytest.raises(Conflict, match="not a usable Ed25519 public key, weak key"):
        await trust.confirm_peer_key(
            session, key_id=key_id, fingerprint=keys.fingerprint(key_id), by=BY
        )
