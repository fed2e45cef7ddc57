"""Why an entry of a peer's feed cannot be accepted, cheapest check first: the envelope's shape,
an enrolled key, unrevoked and valid for the entry's seq, the signature over the canonical
payload, the origin's namespace, the sequence, the body against the hash the payload signs
(feed v2), a redaction's statement, the federation schema and the personal-data gate.
Each check returns a reason, or None; none of them touches the database."""

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from federation import keys
from federation.canonical import CanonicalError, as_received, canonical
from federation.feed import FEED_VERSION, MAX_REDACTED, REDACTION_REASONS, SCOPES
from federation.gate import Gate
from federation.models import PeerKey
from federation.projection import RECORD_ID, SCHEMAS, printable

ENVELOPE_KEYS = {"payload", "key", "sig"}
PAYLOAD_KEYS = {"origin", "seq", "type", "id", "version", "op", "body", "time"}
# A hub's entry carries the origin's envelope unchanged instead of a body.
RELAY_KEYS = {"origin", "seq", "type", "id", "version", "op", "envelope", "time"}
# Feed v2: the payload signs the body's hash; the body travels beside it in the page item.
V2_KEYS = {"v", "origin", "seq", "type", "id", "version", "op", "body_hash", "time"}
V2_RELAY_KEYS = V2_KEYS | {"envelope"}
V2_OPTIONAL = {"scope"}  # and `redact`, in a redaction only
ITEM_KEYS = ENVELOPE_KEYS | {"body"}  # a v2 page item; `redacted` too once its body is purged
MARKER_KEYS = {"seq", "leaf", "redacted"}  # a purged v1 entry: its Merkle leaf only
HEX64 = re.compile(r"[0-9a-f]{64}")
REDACT_KEYS = {"reason", "seqs", "versions"}
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


def is_marker(item: Any) -> bool:
    """A purged v1 entry as a page carries it: `{seq, leaf, redacted}`."""
    return (
        isinstance(item, dict)
        and set(item) == MARKER_KEYS
        and isinstance(item["leaf"], str)
        and HEX64.fullmatch(item["leaf"]) is not None
    )


def is_purged(item: Any) -> bool:
    """An entry whose body its origin's signed redaction purged (a v1 marker, or a v2 entry
    carrying `redacted`): its leaf counts, nothing of it is applied."""
    return is_marker(item) or (isinstance(item, dict) and item.get("redacted") is not None)


def is_withheld(item: Any) -> bool:
    """A `network` entry served without its body to a reader the peer did not recognise
    (`withheld`): its leaf counts, nothing of it is applied."""
    return isinstance(item, dict) and item.get("withheld") is not None


def envelope_part(item: Any) -> Any:
    """The signed envelope {payload, key, sig} of a page item (v2: without the body beside)."""
    if isinstance(item, dict) and ENVELOPE_KEYS <= set(item):
        return {name: item[name] for name in ("payload", "key", "sig")}
    return item


def _fields_problem(payload: dict[str, Any], v1: set[str], v2: set[str]) -> str | None:
    if "v" not in payload:
        if set(payload) == v1:
            return None
        return "the payload does not have exactly the fields of a feed entry"
    if payload["v"] != FEED_VERSION:
        return f"unknown feed version {printable(payload['v'], 10)}"
    # A redaction says what it redacts; a hub's relay of one carries it in the origin's.
    own_redaction = payload.get("op") == "redact" and "envelope" not in v2
    optional = V2_OPTIONAL | ({"redact"} if own_redaction else set())
    if not v2 <= set(payload) or set(payload) - v2 - optional:
        return "the payload does not have exactly the fields of a feed entry"
    if own_redaction and "redact" not in payload:
        return "a redaction does not say what it redacts"
    if "scope" in payload and payload["scope"] not in SCOPES:
        return f"unknown scope {printable(payload['scope'], 20)} (one of {', '.join(SCOPES)})"
    return None


def _shape_problem(
    envelope: Any, fields: set[str], origin: str, *, item: bool = False
) -> str | None:
    """`item`: a page item (a v2 entry carries its body beside the envelope); else an envelope
    exactly (the origin's, inside a hub's entry)."""
    if not isinstance(envelope, dict):
        return "not an envelope {payload, key, sig}"
    allowed = ITEM_KEYS | {"redacted"} if item else ENVELOPE_KEYS
    if not ENVELOPE_KEYS <= set(envelope) or not set(envelope) <= allowed:
        return "not an envelope {payload, key, sig}"
    payload = envelope["payload"]
    if not isinstance(payload, dict):
        return "the payload does not have exactly the fields of a feed entry"
    problem = _fields_problem(payload, fields, V2_RELAY_KEYS if "envelope" in fields else V2_KEYS)
    if problem:
        return problem
    if item and "v" in payload and "body" not in envelope:
        return "a v2 entry carries its body beside its payload (null once purged)"
    if "v" not in payload and set(envelope) != ENVELOPE_KEYS:
        return "a v1 entry carries its body inside its payload"
    if payload["origin"] != origin:
        return f"an entry of origin {printable(payload['origin'], 10)} in the feed of {origin}"
    if not isinstance(payload["id"], str) or not RECORD_ID.fullmatch(payload["id"]):
        return (
            f"record id {printable(payload['id'], 100)} is not CC:local-id (letters, digits,"
            " . _ -) of at most 80 characters"
        )
    return None


def body_of(item: dict[str, Any]) -> Any:
    """An entry's body: beside its payload (v2), or inside it (v1)."""
    payload = item["payload"]
    return item.get("body") if "v" in payload else payload.get("body")


def body_hash_problem(item: dict[str, Any]) -> str | None:
    """(v2) Why the body beside an entry is not the one its payload signs the hash of."""
    payload = item["payload"]
    if "v" not in payload:
        return None
    digest, body = payload["body_hash"], item.get("body")
    if payload["op"] != "upsert":
        if digest is not None or body is not None:
            return f"a {printable(payload['op'], 20)} carries no body"
        return None
    if not isinstance(digest, str) or not HEX64.fullmatch(digest):
        return "the body hash is not a sha256 in hex"
    if item.get("redacted") is not None:
        return None if body is None else "a purged entry carries its body"
    try:
        encoded = canonical(body, checked=True)
    except CanonicalError:
        return "the body cannot be canonicalised"
    if hashlib.sha256(encoded).hexdigest() != digest:
        return "the body is not the one whose hash the entry signs (altered in transit)"
    return None


def redact_problem(payload: dict[str, Any]) -> str | None:
    """Why a redaction's statement `{reason, seqs, versions}` is not acceptable: it may name
    only earlier entries and versions of its own record."""
    statement = payload.get("redact")
    if not isinstance(statement, dict) or set(statement) != REDACT_KEYS:
        return "a redaction states exactly its reason, seqs and versions"
    if statement["reason"] not in REDACTION_REASONS:
        return (
            f"unknown redaction reason {printable(statement['reason'], 40)}"
            f" (one of {', '.join(REDACTION_REASONS)})"
        )
    for name, bound in (("seqs", payload["seq"]), ("versions", payload["version"] + 1)):
        values = statement[name]
        if (
            not isinstance(values, list)
            or not values
            or len(values) > MAX_REDACTED
            or any(type(v) is not int or not 1 <= v < bound for v in values)
        ):
            return f"a redaction's {name} are 1 to {MAX_REDACTED} earlier {name} of its record"
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
    """Why a node's own entry (a page item: v2 with its body beside) cannot be accepted, or
    None. Checks cheapest first. A purged entry is checked as far as it goes (its signature);
    it is never applied."""
    problem = _shape_problem(envelope, PAYLOAD_KEYS, origin, item=True)
    if problem:
        return problem
    payload = envelope["payload"]
    problem = _namespace_problem(payload, origin)
    if problem:
        return problem
    if payload["seq"] != expected_seq:
        return f"sequence {payload['seq']} where {expected_seq} was due"
    problem = _signature_problem(envelope, peer_keys, payload_bytes) or body_hash_problem(envelope)
    if problem or envelope.get("redacted") is not None:
        return problem
    return body_problem(payload, body_of(envelope))


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
    hub's signed directory), the body beside against the hash the origin signed (v2), then the
    record itself."""
    problem = _shape_problem(envelope, RELAY_KEYS, origin, item=True)
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
    names = ("type", "id", "version", "op")
    if ("v" in payload) != ("v" in inner["payload"]):
        return "the relay's feed version differs from the origin's entry"
    for name in (*names, "body_hash") if "v" in payload else names:
        if payload[name] != inner["payload"][name]:
            return f"the relay's {name} differs from the origin's entry"
    if payload.get("scope") != inner["payload"].get("scope"):
        return "the relay's scope differs from the origin's entry"
    problem = body_hash_problem(envelope)
    if problem or envelope.get("redacted") is not None:
        return problem
    inner_item = {**inner, "body": envelope.get("body")} if "v" in payload else inner
    return body_problem(inner["payload"], body_of(inner_item))


def body_problem(payload: dict[str, Any], body: Any) -> str | None:
    """Why a record (its entry's payload, and its body) cannot be accepted: not the federation
    schema (unsafe text, a link that is not http(s), an unknown term...), or personal data in
    it; for a redaction, its statement. The reason quotes what arrived with anything
    unprintable escaped, so it can be stored and shown."""
    schema = SCHEMAS.get(payload["type"]) if isinstance(payload["type"], str) else None
    if schema is None:
        return f"unknown record type {printable(payload['type'], 40)}"
    version = payload["version"]
    if type(version) is not int or not 1 <= version <= MAX_VERSION:
        return f"the version is not an integer from 1 to {MAX_VERSION}"
    if payload["op"] == "withdraw":
        return None if body is None else "a withdrawal carries no body"
    if payload["op"] == "redact" and "v" in payload:
        return redact_problem(payload)
    if payload["op"] != "upsert":
        return f"unknown operation {printable(payload['op'], 20)}"
    try:
        schema.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = printable(".".join(map(str, first["loc"])), 200)
        return f"not the federation schema: {where}: {printable(first['msg'], 300)}"
    hits = HUB_GATE.scan(body)
    if hits:
        return "personal data: " + "; ".join(h.reason for h in hits[:5])
    return None
