"""How accepted entries are stored: a row made from each before its batch's transaction begins,
written with the rest of the batch (a version never goes backwards, a repeat changes nothing);
refusals kept with their reason; and, on a hub, the relay that republishes what it accepts."""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from federation import feed, keys
from federation.canonical import canonical
from federation.feed import SCOPES
from federation.models import FederatedRecord, Peer, SyncRefusal
from federation.pool import search_id
from federation.projection import RECORD_ID, printable
from node.core.db import utcnow
from node.core.settings import Settings


def envelope_bytes(envelope: dict[str, Any], payload_bytes: bytes | None) -> bytes:
    """The canonical envelope, from its payload's canonical bytes when they are at hand (keys
    sorted: key, payload, sig)."""
    if payload_bytes is None:
        return canonical(envelope, checked=True)
    return b"".join(
        (
            b'{"key":',
            canonical(envelope["key"], checked=True),
            b',"payload":',
            payload_bytes,
            b',"sig":',
            canonical(envelope["sig"], checked=True),
            b"}",
        )
    )


def body_bytes(payload: dict[str, Any], payload_bytes: bytes | None) -> bytes:
    """The canonical body: the slice of the payload's canonical bytes it fills ("body" sorts
    first), or computed when those bytes are not at hand."""
    if payload_bytes is not None:
        rest = canonical({k: v for k, v in payload.items() if k != "body"}, checked=True)
        head, tail = b'{"body":', b"," + rest[1:]
        if payload_bytes.startswith(head) and payload_bytes.endswith(tail):
            return payload_bytes[len(head) : len(payload_bytes) - len(tail)]
    return canonical(payload["body"], checked=True)


@dataclass(frozen=True)
class Held:
    """What the checks of the next entry need to know of a stored record."""

    version: int
    body_hash: str
    withdrawn: bool


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


RECORDS = _table(FederatedRecord)


class Writes:
    """The records one batch of entries writes: what is held already is read once (without
    bodies), new records are inserted and held ones updated in one statement each. Only
    well-formed ids are looked up: a refused entry's id (a NUL, a lone surrogate, 10,000
    characters) must not reach the database's driver."""

    def __init__(self, session: Session, ids: list[str]) -> None:
        self.held = {
            rid: Held(version, body_hash, withdrawn)
            for rid, version, body_hash, withdrawn in session.execute(
                select(
                    FederatedRecord.record_id,
                    FederatedRecord.version,
                    FederatedRecord.body_hash,
                    FederatedRecord.withdrawn,
                ).where(FederatedRecord.record_id.in_([i for i in ids if RECORD_ID.fullmatch(i)]))
            )
        }
        self.new: dict[str, dict[str, Any]] = {}
        self.changed: dict[str, dict[str, Any]] = {}

    def write(self, session: Session) -> None:
        if self.new:  # a Core statement: the ORM's bulk insert adds nothing here but time
            session.connection().execute(insert(RECORDS), list(self.new.values()))
        if self.changed:
            session.execute(update(FederatedRecord), list(self.changed.values()))
        self.new, self.changed = {}, {}


def body_text(payload: dict[str, Any], body: Any) -> str | None:
    """(v2) The canonical body an accepted entry carries beside its payload, as stored."""
    if "v" not in payload or body is None:
        return None
    return canonical(body, checked=True).decode("utf-8")


def stage(
    envelope: dict[str, Any],
    payload_bytes: bytes | None = None,
    encoded: bytes | None = None,
    *,
    body: str | None = None,
    relayed: bool = False,
) -> dict[str, Any]:
    """The row an accepted entry would store, computed before its batch's transaction (which
    holds SQLite's write lock) begins. `payload_bytes` and `encoded`: the payload's and the
    envelope's canonical bytes, if at hand; `body`: a v2 entry's canonical body (beside it).
    `relayed`: the envelope (and a v2 body) will be kept in the hub's relay entry (whose seq
    the transaction fills in), not in the row."""
    payload = envelope["payload"]
    if encoded is None:
        encoded = envelope_bytes(envelope, payload_bytes)
    rid = payload["id"]
    if "v" in payload:
        digest = hashlib.sha256(body.encode("utf-8") if body is not None else b"null")
    else:
        digest = hashlib.sha256(body_bytes(payload, payload_bytes))
    return {
        "record_id": rid,
        "origin": payload["origin"],
        "record_type": payload["type"],
        "version": payload["version"],
        "withdrawn": payload["op"] == "withdraw",
        "body_hash": digest.hexdigest(),
        "envelope": None if relayed else encoded.decode("utf-8"),
        "stored_body": None if relayed else body,
        "redacted": None,
        "relay_seq": None,
        "origin_seq": payload["seq"],
        # The scope the origin signed (none before scopes: public).
        "scope": payload.get("scope", "public") if payload.get("scope") in SCOPES else "public",
        "received_at": utcnow(),
        "search_id": search_id(rid),
        "indexed": False,  # the search index catches up after the import (`index_pending`)
    }


def apply(writes: Writes, row: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """Store a staged entry (in `writes`, written with its batch); a version never goes
    backwards and a repeat changes nothing. Returns the outcome and the row if stored."""
    rid, version = row["record_id"], row["version"]
    held = writes.held.get(rid)
    if held is not None:
        if version < held.version:
            return f"refused: a replay of version {version} (holding {held.version})", None
        if version == held.version:
            if row["body_hash"] == held.body_hash and row["withdrawn"] == held.withdrawn:
                return "unchanged", None
            return f"refused: version {version} already held with other content", None
    if held is None or rid in writes.new:
        writes.new[rid] = row  # first stored in this batch (a later version replaces the row)
    else:
        writes.changed[rid] = row
    writes.held[rid] = Held(version, row["body_hash"], row["withdrawn"])
    return "applied", row


def refuse(session: Session, peer: Peer, seq: int | None, rid: Any, reason: str) -> None:
    """Keep why an entry (or, with no seq, a whole round) of this peer was refused: the reason
    and the id as they arrived, anything unprintable escaped (a NUL or a lone surrogate would
    stop PostgreSQL, or SQLite's driver, from storing the batch)."""
    session.add(
        SyncRefusal(
            peer_id=peer.id,
            seq=seq,
            reason=printable(reason, 4000),
            record_id=printable(rid, 80)[:80] if rid is not None else None,
        )
    )


def redact_records(session: Session, payload: dict[str, Any]) -> None:
    """Apply an origin's signed redaction (checked: its record, its earlier versions): purge
    the bodies of those versions wherever this program keeps them (a hub's relay entries,
    the record if one of them is its version), leave the record for the search index to catch
    up with (a purged record leaves it), and withhold the reasons of the record's refusals,
    which may quote what arrived."""
    statement, rid = payload["redact"], payload["id"]
    versions: list[int] = statement["versions"]
    marker = feed.redaction_marker(payload["seq"], statement["reason"])
    feed.purge_entries(session, rid, versions, marker)
    for record in session.scalars(
        select(FederatedRecord).where(
            FederatedRecord.record_id == rid,
            FederatedRecord.version.in_(versions),
            FederatedRecord.redacted.is_(None),
            FederatedRecord.withdrawn.is_(False),
        )
    ):
        record.stored_body, record.redacted, record.indexed = None, marker, False
        if record.envelope is not None and '"v":2' not in record.envelope:
            record.envelope = canonical({"redacted": json.loads(marker)}).decode("utf-8")
    session.execute(
        update(SyncRefusal)
        .where(SyncRefusal.record_id == rid)
        .values(reason="(withheld: the origin redacted this record's bodies)")
    )
    session.flush()


@dataclass(frozen=True)
class Relay:
    """How a hub republishes what it accepts: signed again under its own key and origin."""

    key: keys.SigningKey
    origin: str


def relay_for(session: Session, settings: Settings) -> Relay | None:
    """The hub's relay, or None when this is not a hub or it has no signing key yet."""
    if settings.role != "hub" or not settings.country:
        return None
    try:
        return Relay(feed.active_key(session, settings), settings.country)
    except (feed.FederationNotConfigured, OSError):
        return None
