"""Why an entry of a peer's feed cannot be accepted, cheapest check first: the envelope's shape,
an enrolled key, unrevoked and valid for the entry's seq, the signature over the canonical
payload, the origin's namespace, the sequence, the federation schema and the personal-data gate.
Each check returns a reason, or None; none of them touches the database."""

import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from federation import keys
from federation.canonical import as_received
from federation.gate import Gate
from federation.models import PeerKey
from federation.projection import RECORD_ID, SCHEMAS, printable

ENVELOPE_KEYS = {"payload", "key", "sig"}
PAYLOAD_KEYS = {"origin", "seq", "type", "id", "version", "op", "body", "time"}
# A hub's entry carries the origin's envelope unchanged instead of a body.
RELAY_KEYS = {"origin", "seq", "type", "id", "version", "op", "envelope", "time"}
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
MAX_VERSION = 2**31 - 1  # what every database stores in an INTEGER column
HUB_GATE = Gate()  # the hub knows no people: addresses, numbers and identifiers only


def parse_time(text: Any) -> datetime | None:
    """A signing time written exactly as TIME_FORMAT, in UTC; anything else is None."""
    if not isinstance(text, str) or not STAMP.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def canonical_payload(item: Any) -> bytes | None:
    """The canonical bytes of an entry's payload: its Merkle leaf and what its key signed."""
    payload = item.get("payload") if isinstance(item, dict) else None
    return as_received(payload) if payload is not None else None  # a lone surrogate too


class AwaitingConfirmation(str):
    """A refusal that lasts only until the operator confirms a rotated key: the peer's feed
    waits at that entry rather than pass it by for ever."""


def revocation_bound(key: PeerKey) -> int | None:
    """The last entry (seq) a revoked key may have signed; None if it is not revoked. A key
    revoked with no bound known (a time only) signs nothing: a time never widens trust."""
    if key.revoked_seq is not None:
        return key.revoked_seq
    return 0 if key.revoked_at is not None else None


def key_problem(
    peer_keys: dict[str, PeerKey], key_id: Any, signed_at: datetime | None, seq: int | None = None
) -> str | None:
    """Why `key_id` cannot have signed entry `seq` (None: a checkpoint or a directory, which
    a revoked or unconfirmed key signs in vain). The time the signer wrote can only narrow."""
    key = peer_keys.get(key_id) if isinstance(key_id, str) else None
    if key is None:
        return f"signed by a key not enrolled here ({str(key_id)[:80]})"
    if signed_at is None:
        return "no valid signing time"
    bound = revocation_bound(key)
    if bound is not None and (seq is None or seq > bound):
        return f"signed by key {key.key_id} after its revocation (at seq {bound})"
    if key.awaiting_confirmation:
        return AwaitingConfirmation(
            f"signed by key {key.key_id}, announced by a key rotation that awaits the"
            f" operator's confirmation (integra hub confirm-key {key.key_id})"
        )
    if seq is not None and (
        (key.valid_from_seq is not None and seq < key.valid_from_seq)
        or (key.valid_until_seq is not None and seq > key.valid_until_seq)
    ):
        window = f"{key.valid_from_seq or 1}–{key.valid_until_seq or ''}"
        return f"signed outside the validity window of key {key.key_id} (entries {window})"
    if (key.valid_from is not None and signed_at < key.valid_from - timedelta(minutes=5)) or (
        key.valid_until is not None and signed_at > key.valid_until
    ):
        return f"signed outside the validity window of key {key.key_id}"
    return None


def _shape_problem(envelope: Any, fields: set[str], origin: str) -> str | None:
    if not isinstance(envelope, dict) or set(envelope) != ENVELOPE_KEYS:
        return "not an envelope {payload, key, sig}"
    payload = envelope["payload"]
    if not isinstance(payload, dict) or set(payload) != fields:
        return "the payload does not have exactly the fields of a feed entry"
    if payload["origin"] != origin:
        return f"an entry of origin {printable(payload['origin'], 10)} in the feed of {origin}"
    if not isinstance(payload["id"], str) or not RECORD_ID.fullmatch(payload["id"]):
        return (
            f"record id {printable(payload['id'], 100)} is not CC:local-id (letters, digits,"
            " . _ -) of at most 80 characters"
        )
    return None


def _signature_problem(
    envelope: dict[str, Any], peer_keys: dict[str, PeerKey], payload_bytes: bytes | None = None
) -> str | None:
    """`payload_bytes`: the payload's canonical bytes, if the caller has them already."""
    payload = envelope["payload"]
    if type(payload["seq"]) is not int:
        return "the sequence number is not an integer"
    problem = key_problem(peer_keys, envelope["key"], parse_time(payload["time"]), payload["seq"])
    if problem:
        return problem
    if payload_bytes is None:
        payload_bytes = as_received(payload)  # what arrived, a lone surrogate too
    if not keys.verify(peer_keys[envelope["key"]].public_key, payload_bytes, str(envelope["sig"])):
        return "the signature does not match the entry (altered in transit or forged)"
    return None


def _namespace_problem(payload: dict[str, Any], origin: str) -> str | None:
    if not isinstance(payload["id"], str) or not payload["id"].startswith(f"{origin}:"):
        return f"record id {str(payload['id'])[:80]} is outside the {origin} namespace"
    return None


def entry_problem(
    envelope: Any,
    *,
    origin: str,
    expected_seq: int,
    peer_keys: dict[str, PeerKey],
    payload_bytes: bytes | None = None,
) -> str | None:
    """Why a node's own entry cannot be accepted, or None. Checks cheapest first."""
    problem = _shape_problem(envelope, PAYLOAD_KEYS, origin)
    if problem:
        return problem
    payload = envelope["payload"]
    problem = _namespace_problem(payload, origin)
    if problem:
        return problem
    if payload["seq"] != expected_seq:
        return f"sequence {payload['seq']} where {expected_seq} was due"
    return _signature_problem(envelope, peer_keys, payload_bytes) or body_problem(payload)


def relay_problem(
    envelope: Any,
    *,
    origin: str,
    expected_seq: int,
    peer_keys: dict[str, PeerKey],
    listed: dict[str, dict[str, PeerKey]],
    payload_bytes: bytes | None = None,
) -> str | None:
    """Why a hub's relayed entry cannot be accepted, or None: the hub's signature over its
    entry, then the origin's signature over the envelope it carries (under the keys of the
    hub's signed directory), then the record itself."""
    problem = _shape_problem(envelope, RELAY_KEYS, origin)
    if problem:
        return problem
    payload = envelope["payload"]
    if payload["seq"] != expected_seq:
        return f"sequence {payload['seq']} where {expected_seq} was due"
    problem = _signature_problem(envelope, peer_keys, payload_bytes)
    if problem:
        return problem
    inner = payload["envelope"]
    source = (
        inner["payload"].get("origin")
        if isinstance(inner, dict) and isinstance(inner.get("payload"), dict)
        else None
    )
    if not isinstance(source, str) or source not in listed:
        return f"relays a record of {str(source)[:10]}, a node the hub's directory does not list"
    problem = _shape_problem(inner, PAYLOAD_KEYS, source) or _namespace_problem(
        inner["payload"], source
    )
    problem = problem or _signature_problem(inner, listed[source])
    if problem:
        return f"the origin's envelope: {problem}"
    for name in ("type", "id", "version", "op"):
        if payload[name] != inner["payload"][name]:
            return f"the relay's {name} differs from the origin's entry"
    return body_problem(inner["payload"])


def body_problem(payload: dict[str, Any]) -> str | None:
    """Why a record cannot be accepted: not the federation schema (unsafe text, a link that is
    not http(s), an unknown term...), or personal data in it. The reason quotes what arrived
    with anything unprintable escaped, so it can be stored and shown."""
    schema = SCHEMAS.get(payload["type"]) if isinstance(payload["type"], str) else None
    if schema is None:
        return f"unknown record type {printable(payload['type'], 40)}"
    version = payload["version"]
    if type(version) is not int or not 1 <= version <= MAX_VERSION:
        return f"the version is not an integer from 1 to {MAX_VERSION}"
    if payload["op"] == "withdraw":
        return None if payload["body"] is None else "a withdrawal carries no body"
    if payload["op"] != "upsert":
        return f"unknown operation {printable(payload['op'], 20)}"
    try:
        schema.model_validate(payload["body"])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = printable(".".join(map(str, first["loc"])), 200)
        return f"not the federation schema: {where}: {printable(first['msg'], 300)}"
    hits = HUB_GATE.scan(payload["body"])
    if hits:
        return "personal data: " + "; ".join(h.reason for h in hits[:5])
    return None
