"""The hub's side of signed sync: pull each enrolled node's feed, verify, apply.

Every entry is checked on its own (envelope shape, enrolled and unrevoked key, signature over
the canonical payload, origin namespace, sequence, federation schema, personal-data detectors,
version order) and every checkpoint against the Merkle root of everything received, so a
rewritten history is noticed. Refused entries are kept with their reason and the rest of the
feed is still applied. The cursor, the checkpoint and the records change in one transaction:
a crash or a repeated delivery leaves the same state.
"""

import ctypes
import fcntl
import gc
import hashlib
import multiprocessing
import os
import queue
import random
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from multiprocessing.context import ForkContext, SpawnContext
from pathlib import Path
from typing import Any

import httpx
import structlog
from pydantic import ValidationError
from sqlalchemy import Engine, Table, bindparam, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from federation import feed, keys
from federation.canonical import CanonicalError, canonical, parse_strict
from federation.gate import Gate
from federation.merkle import dump_frontier, extend, frontier_root, leaf_hash, load_frontier
from federation.models import (
    PEER_HUB,
    PEER_LISTED,
    PEER_NODE,
    FederatedRecord,
    Peer,
    PeerKey,
    PeerSync,
    SyncRefusal,
)
from federation.projection import SCHEMAS
from node.core.db import READ_ONLY, create_sync_engine, utcnow
from node.core.models import AuditEntry
from node.core.settings import Settings
from practices.search.port import IndexDocument

MAX_PAGE_BYTES = 4 * 1024 * 1024
PAGE_SIZE = 500  # a node serves up to `feed_page_max` (500 by default)
ENVELOPE_KEYS = {"payload", "key", "sig"}
PAYLOAD_KEYS = {"origin", "seq", "type", "id", "version", "op", "body", "time"}
# A hub's entry carries the origin's envelope unchanged instead of a body.
RELAY_KEYS = {"origin", "seq", "type", "id", "version", "op", "envelope", "time"}
COMMIT_EVERY = 500  # entries applied per transaction, each committed with its cursor
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
HUB_GATE = Gate()  # the hub knows no people: addresses, numbers and identifiers only
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
JOB_TIMEOUT = timedelta(minutes=10)


class SyncError(Exception):
    """The sync round with a peer stopped; recorded on its status, retried with backoff."""


@dataclass
class Round:
    applied: int = 0
    unchanged: int = 0
    refused: int = 0
    reasons: list[str] = field(default_factory=list)


def fetch_json(
    client: httpx.Client,
    url: str,
    params: dict[str, Any] | None = None,
    timeout: float | None = None,
) -> Any:
    """GET with a hard size limit, parsed strictly (no duplicate keys, floats or deep nesting),
    within the job's deadline: a peer that trickles bytes cannot hold the job for ever.
    `timeout`: for each step of the request, instead of the client's own."""
    limits = httpx.Timeout(timeout) if timeout is not None else httpx.USE_CLIENT_DEFAULT
    with client.stream("GET", url, params=params, timeout=limits) as response:
        if response.status_code != 200:
            raise SyncError(f"{url} answered {response.status_code}")
        data = bytearray()
        for chunk in response.iter_bytes():
            if time.monotonic() > _job_deadline.get():
                raise SyncError(f"the job ran past its limit of {JOB_TIMEOUT}")
            data += chunk
            if len(data) > MAX_PAGE_BYTES:
                raise CanonicalError(f"larger than {MAX_PAGE_BYTES} bytes")
    return parse_strict(bytes(data), max_bytes=MAX_PAGE_BYTES)


# When the running job must give up (time.monotonic()); set around each peer's job.
_job_deadline: ContextVar[float] = ContextVar("job_deadline", default=float("inf"))


STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def _time(text: Any) -> datetime | None:
    """A signing time written exactly as TIME_FORMAT, in UTC; anything else is None."""
    if not isinstance(text, str) or not STAMP.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def key_problem(
    peer_keys: dict[str, PeerKey], key_id: Any, signed_at: datetime | None
) -> str | None:
    key = peer_keys.get(key_id) if isinstance(key_id, str) else None
    if key is None:
        return f"signed by a key not enrolled here ({str(key_id)[:80]})"
    if signed_at is None:
        return "no valid signing time"
    if key.revoked_at is not None and signed_at > key.revoked_at:
        return f"signed by key {key.key_id} after its revocation"
    if signed_at < key.valid_from - timedelta(minutes=5) or (
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
        return f"an entry of origin {str(payload['origin'])[:10]} in the feed of {origin}"
    return None


def _signature_problem(
    envelope: dict[str, Any], peer_keys: dict[str, PeerKey], signed: bytes | None = None
) -> str | None:
    """`signed`: the payload's canonical bytes, if the caller has them already."""
    payload = envelope["payload"]
    problem = key_problem(peer_keys, envelope["key"], _time(payload["time"]))
    if problem:
        return problem
    if signed is None:
        signed = canonical(payload, checked=True)
    if not keys.verify(peer_keys[envelope["key"]].public_key, signed, str(envelope["sig"])):
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
    signed: bytes | None = None,
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
    return _signature_problem(envelope, peer_keys, signed) or body_problem(payload)


def relay_problem(
    envelope: Any,
    *,
    origin: str,
    expected_seq: int,
    peer_keys: dict[str, PeerKey],
    listed: dict[str, dict[str, PeerKey]],
    signed: bytes | None = None,
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
    problem = _signature_problem(envelope, peer_keys, signed)
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
    schema = SCHEMAS.get(payload["type"]) if isinstance(payload["type"], str) else None
    if schema is None:
        return f"unknown record type {str(payload['type'])[:40]}"
    if payload["op"] == "withdraw":
        return None if payload["body"] is None else "a withdrawal carries no body"
    if payload["op"] != "upsert":
        return f"unknown operation {str(payload['op'])[:20]}"
    if not isinstance(payload["version"], int) or payload["version"] < 1:
        return "the version is not a positive integer"
    try:
        schema.model_validate(payload["body"])
    except ValidationError as exc:
        first = exc.errors()[0]
        return f"not the federation schema: {'.'.join(map(str, first['loc']))}: {first['msg']}"
    hits = HUB_GATE.scan(payload["body"])
    if hits:
        return "personal data: " + "; ".join(h.reason for h in hits[:5])
    return None


SEARCH_NAMESPACE = uuid.UUID("6f1c2b52-3c1e-4f0e-9a55-7d3b1c0e5a11")


def search_id(record_id: str) -> uuid.UUID:
    return uuid.uuid5(SEARCH_NAMESPACE, record_id)


def _date(text: Any) -> date | None:
    """A start date to sort by; the schema checks its shape, not that it is a real day
    (2024-02-30): such a date sorts as undated rather than stop the index."""
    try:
        return date.fromisoformat(text) if isinstance(text, str) and text else None
    except ValueError:
        return None


def index_document(record: FederatedRecord) -> IndexDocument:
    """What EU-wide search sees of a shared record: the same shape as a node's practices."""
    body = record.body or {}
    titles = [body.get("title", ""), body.get("original_title") or ""]
    titles += [t.get("title", "") for t in body.get("translations", [])]
    texts = [
        body.get(k) or ""
        for k in (
            "summary",
            "description",
            "problem_addressed",
            "rationale",
            "lessons_learned",
            "transferability",
            "purpose",
            "programme",
            "observations",
            "findings",
            "recommendations",
        )
    ]
    texts += [o.get("name", "") for o in body.get("organisations", [])]
    start = _date(body.get("start_date"))
    return IndexDocument(
        record_id=search_id(record.record_id),
        title=str(body.get("title", "")),
        title_text=" \n".join(titles),
        body_text=" \n".join(texts),
        sort_date=start,
        facets={
            "country": [body.get("country") or record.origin],
            "kind": [body.get("kind", record.record_type)],
            "language": [body.get("language", "")],
            "licence": [body["licence"]] if body.get("licence") else [],
            "evaluation_type": [body["evaluation"]["type"]] if body.get("evaluation") else [],
            "intervention_type": body.get("intervention_types", []),
            "setting": body.get("settings", []),
            "target_group": body.get("target_groups", []),
            "process_focus": body.get("process_focus", []),
            "source": ["federated"],
        },
    )


def _envelope_bytes(envelope: dict[str, Any], signed: bytes | None) -> bytes:
    """The canonical envelope, from its payload's canonical bytes when they are at hand (keys
    sorted: key, payload, sig)."""
    if signed is None:
        return canonical(envelope, checked=True)
    return b"".join(
        (
            b'{"key":',
            canonical(envelope["key"], checked=True),
            b',"payload":',
            signed,
            b',"sig":',
            canonical(envelope["sig"], checked=True),
            b"}",
        )
    )


def _body_bytes(payload: dict[str, Any], signed: bytes | None) -> bytes:
    """The canonical body: the slice of the payload's canonical bytes it fills ("body" sorts
    first), or computed when those bytes are not at hand."""
    if signed is not None:
        rest = canonical({k: v for k, v in payload.items() if k != "body"}, checked=True)
        head, tail = b'{"body":', b"," + rest[1:]
        if signed.startswith(head) and signed.endswith(tail):
            return signed[len(head) : len(signed) - len(tail)]
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
    bodies), new records are inserted and held ones updated in one statement each."""

    def __init__(self, session: Session, ids: list[str]) -> None:
        self.held = {
            rid: Held(version, body_hash, withdrawn)
            for rid, version, body_hash, withdrawn in session.execute(
                select(
                    FederatedRecord.record_id,
                    FederatedRecord.version,
                    FederatedRecord.body_hash,
                    FederatedRecord.withdrawn,
                ).where(FederatedRecord.record_id.in_(ids))
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


def stage(
    envelope: dict[str, Any],
    signed: bytes | None = None,
    encoded: bytes | None = None,
    *,
    relayed: bool = False,
) -> dict[str, Any]:
    """The row an accepted entry would store, computed before its batch's transaction (which
    holds SQLite's write lock) begins. `signed` and `encoded`: the payload's and the envelope's
    canonical bytes, if at hand. `relayed`: the envelope will be kept in the hub's relay entry
    (whose seq the transaction fills in), not in the row."""
    payload = envelope["payload"]
    if encoded is None:
        encoded = _envelope_bytes(envelope, signed)
    rid = payload["id"]
    return {
        "record_id": rid,
        "origin": payload["origin"],
        "record_type": payload["type"],
        "version": payload["version"],
        "withdrawn": payload["op"] == "withdraw",
        "body_hash": hashlib.sha256(_body_bytes(payload, signed)).hexdigest(),
        "envelope": None if relayed else encoded.decode("utf-8"),
        "relay_seq": None,
        "origin_seq": payload["seq"],
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


INDEX_BATCH = 500
# Written as the partial index ix_federated_record_pending is, so that SQLite uses it (it does
# not for "indexed IS 0" or "indexed = 0": every catch-up would read the whole table).
PENDING = text("NOT federated_record.indexed")
PENDING_BATCH = (
    select(FederatedRecord).where(PENDING).order_by(FederatedRecord.record_id).limit(INDEX_BATCH)
)


def index_pending(session: Session, search: Any) -> int:
    """Bring the search index up to the records the import changed, a batch per transaction,
    and return how many. Idempotent: a crash leaves the rest pending for the next call. A
    record changed again meanwhile (another version) stays pending."""
    done = 0
    table = FederatedRecord.__table__
    assert isinstance(table, Table)
    mark = (
        update(table)
        .where(table.c.record_id == bindparam("rid"), table.c.version == bindparam("v"))
        .values(indexed=True)
    )
    while records := list(session.scalars(PENDING_BATCH)):
        versions = [{"rid": r.record_id, "v": r.version} for r in records]
        reindex(session, search, records)
        session.connection().execute(mark, versions)
        session.commit()
        done += len(records)
    return done


def reindex(session: Session, search: Any, records: list[FederatedRecord]) -> None:
    """Bring the search index in line with these records, in one call each way."""
    if search is None or not records:
        return
    latest = {r.record_id: r for r in records}.values()
    gone = [r.search_id for r in latest if r.withdrawn and r.search_id is not None]
    if gone:
        search.remove(session, gone)
    live = [index_document(r) for r in latest if not r.withdrawn]
    if live:
        search.upsert(session, live)


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


def _refuse(session: Session, peer: Peer, seq: int | None, rid: Any, reason: str) -> None:
    session.add(
        SyncRefusal(
            peer_id=peer.id,
            seq=seq,
            reason=reason,
            record_id=str(rid)[:80] if rid is not None else None,
        )
    )


def _verify_signed(
    document: Any, name: str, peer: Peer, peer_keys: dict[str, PeerKey]
) -> dict[str, Any]:
    """A `{<name>, key, sig}` document signed by one of the peer's keys: its body."""
    if not isinstance(document, dict) or set(document) != {name, "key", "sig"}:
        raise SyncError(f"the {name} is not {{{name}, key, sig}}")
    body = document[name]
    if not isinstance(body, dict) or body.get("origin") != peer.origin:
        raise SyncError(f"the {name} is not this peer's")
    problem = key_problem(peer_keys, document["key"], _time(body.get("time")))
    if problem or not keys.verify(
        peer_keys[document["key"]].public_key, canonical(body), str(document["sig"])
    ):
        raise SyncError(f"the {name}'s signature is not valid ({problem or 'mismatch'})")
    return body


def _checkpoint(client: httpx.Client, peer: Peer, peer_keys: dict[str, PeerKey]) -> dict[str, Any]:
    signed = fetch_json(client, f"{peer.base_url}/federation/v1/checkpoint")
    body = _verify_signed(signed, "checkpoint", peer, peer_keys)
    if set(body) != {"origin", "size", "root", "time"} or not isinstance(body["size"], int):
        raise SyncError("the checkpoint does not have exactly origin, size, root, time")
    return body


def _stamp(moment: datetime | None) -> str | None:
    return moment.strftime(TIME_FORMAT) if moment else None


def directory(session: Session, hub: Relay) -> dict[str, Any]:
    """The hub's signed list of the nodes it enrols and their keys, so a mirror can check the
    origin's signature inside every relayed entry."""
    nodes = []
    for peer in session.scalars(
        select(Peer).where(Peer.kind == PEER_NODE, Peer.active).order_by(Peer.origin)
    ):
        peer_keys = session.scalars(
            select(PeerKey).where(PeerKey.peer_id == peer.id).order_by(PeerKey.key_id)
        )
        nodes.append(
            {
                "origin": peer.origin,
                "keys": [
                    {
                        "key_id": k.key_id,
                        "public_key": k.public_key,
                        "valid_from": _stamp(k.valid_from),
                        "valid_until": _stamp(k.valid_until),
                        "revoked_at": _stamp(k.revoked_at),
                    }
                    for k in peer_keys
                ],
            }
        )
    body = {"origin": hub.origin, "nodes": nodes, "time": _stamp(utcnow())}
    return {"directory": body, "key": hub.key.key_id, "sig": hub.key.sign(canonical(body))}


def _listed_keys(
    session: Session, client: httpx.Client, hub: Peer, hub_keys: dict[str, PeerKey]
) -> dict[str, dict[str, PeerKey]]:
    """Fetch and verify the mirrored hub's directory; keep its nodes' keys as listed peers."""
    body = _verify_signed(
        fetch_json(client, f"{hub.base_url}/federation/v1/directory"), "directory", hub, hub_keys
    )
    if not isinstance(body.get("nodes"), list):
        raise SyncError("the directory lists no nodes")
    listed: dict[str, dict[str, PeerKey]] = {}
    for node in body["nodes"]:
        origin = node.get("origin") if isinstance(node, dict) else None
        if not isinstance(origin, str) or len(origin) != 2 or origin == hub.origin:
            raise SyncError(f"the directory lists an invalid origin {str(origin)[:10]}")
        peer = session.scalar(select(Peer).where(Peer.origin == origin))
        if peer is None:
            peer = Peer(origin=origin, kind=PEER_LISTED, base_url=hub.base_url)
            session.add(peer)
            session.flush()
        if peer.kind != PEER_LISTED:
            continue  # a node this program pulls itself keeps the keys enrolled here
        listed[origin] = {}
        entries = node.get("keys")
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise SyncError(f"the directory's keys of {origin} are not a list of keys")
        for entry in entries:
            public = str(entry.get("public_key", ""))
            try:
                key_id = keys.key_id_of(keys.unb64(public))
            except ValueError:
                key_id = ""
            if key_id != entry.get("key_id"):
                raise SyncError(
                    f"the directory's key {str(entry.get('key_id'))[:80]} is not its own"
                )
            key = session.get(PeerKey, key_id)
            if key is None:
                key = PeerKey(key_id=key_id, peer_id=peer.id, public_key=public)
                session.add(key)
            elif key.peer_id != peer.id:
                raise SyncError(f"the directory gives key {key_id} to {origin} and another node")
            key.valid_from = _time(entry.get("valid_from")) or utcnow()
            key.valid_until = _time(entry.get("valid_until"))
            key.revoked_at = _time(entry.get("revoked_at"))
            listed[origin][key_id] = key
    session.flush()
    return listed


def accept_rotations(
    session: Session, client: httpx.Client, peer: Peer, peer_keys: dict[str, PeerKey]
) -> list[str]:
    """Trust a node's new key when its rotation announcement is signed by a key already
    trusted and by the new key itself; the old key then signs nothing after the rotation."""
    document = fetch_json(client, f"{peer.base_url}/federation/v1/keys")
    rows = document.get("keys") if isinstance(document, dict) else None
    accepted: list[str] = []
    for row in rows if isinstance(rows, list) else []:
        announcement = row.get("announcement") if isinstance(row, dict) else None
        if not isinstance(announcement, dict) or row.get("key_id") in peer_keys:
            continue
        statement = announcement.get("statement")
        signatures = announcement.get("signatures")
        if not isinstance(statement, dict) or not isinstance(signatures, list):
            continue
        previous = peer_keys.get(str(statement.get("previous")))
        new_id, public = statement.get("key"), str(statement.get("public_key", ""))
        when = _time(statement.get("time"))
        try:
            derived = keys.key_id_of(keys.unb64(public))
        except ValueError:
            continue
        signed_by = {s.get("key"): str(s.get("sig")) for s in signatures if isinstance(s, dict)}
        payload = canonical(statement)
        if (
            statement.get("type") != "key-rotation"
            or statement.get("origin") != peer.origin
            or previous is None
            or derived != new_id
            or key_problem(peer_keys, previous.key_id, when) is not None
            or not keys.verify(previous.public_key, payload, signed_by.get(previous.key_id, ""))
            or not keys.verify(public, payload, signed_by.get(new_id, ""))
            or session.get(PeerKey, derived) is not None
        ):
            continue
        assert when is not None
        key = PeerKey(key_id=derived, peer_id=peer.id, public_key=public, valid_from=when)
        session.add(key)
        previous.valid_until = min(previous.valid_until or when, when)
        peer_keys[derived] = key
        session.add(
            AuditEntry(
                actor="sync",
                action="key_rotation_accepted",
                entity_type="peer_key",
                entity_id=derived,
                detail={"origin": peer.origin, "previous": previous.key_id},
            )
        )
        accepted.append(derived)
    return accepted


def _pages(client: httpx.Client, peer: Peer, after: int, upto: int) -> Iterator[list[Any]]:
    """Pages of entries after `after` up to `upto`, halving the page size when a page is
    unreadable (an entry that cannot be read alone comes as ("unreadable", seq, reason))."""
    limit = PAGE_SIZE
    while after < upto:
        try:
            page = fetch_json(
                client,
                f"{peer.base_url}/federation/v1/feed",
                {"after": after, "limit": min(limit, upto - after)},
            )
        except CanonicalError as exc:
            if limit > 1:
                limit = max(1, limit // 2)
                continue
            yield [("unreadable", after + 1, str(exc))]  # this one entry cannot be read
            after += 1
            limit = PAGE_SIZE
            continue
        entries = page.get("entries") if isinstance(page, dict) else None
        if not isinstance(entries, list) or not entries:
            return
        entries = entries[: upto - after]
        yield entries
        after += len(entries)


def _signed(item: Any) -> bytes | None:
    """The canonical bytes of an entry's payload: its Merkle leaf and what its key signed."""
    payload = item.get("payload") if isinstance(item, dict) else None
    return canonical(payload, checked=True) if payload is not None else None


def _record_id(item: Any) -> str | None:
    payload = item.get("payload") if isinstance(item, dict) else None
    rid = payload.get("id") if isinstance(payload, dict) else None
    return rid if isinstance(rid, str) else None


def sync_peer(
    session: Session,
    peer: Peer,
    client: httpx.Client,
    relay: Relay | None = None,
) -> Round:
    """One round with one peer (a node's own feed, or a hub's aggregate for a mirror).

    Nothing is applied until everything up to the signed checkpoint has arrived and matches its
    Merkle root; then entries are applied in batches, each committed with the cursor and the
    frontier, so a crash resumes where it stopped and a repeat changes nothing. A hub relays
    what it applies in its own feed, in the same transaction. Applied records are left for the
    search index to catch up with (`index_pending`).

    No transaction is open while pages arrive and are checked (on SQLite a transaction holds the
    database's write lock): the hub's API and other peers' imports write meanwhile. What the
    checks read (the cursor, the keys) stays loaded; the peer's lease keeps it unchanged."""
    expiring, session.expire_on_commit = session.expire_on_commit, False
    try:
        return _sync_peer(session, peer, client, relay)
    finally:
        session.expire_on_commit = expiring


def _sync_peer(session: Session, peer: Peer, client: httpx.Client, relay: Relay | None) -> Round:
    state = session.get(PeerSync, peer.id) or PeerSync(
        peer_id=peer.id, cursor=0, checkpoint_size=0, frontier=[]
    )
    session.add(state)
    peer_keys = {
        k.key_id: k for k in session.scalars(select(PeerKey).where(PeerKey.peer_id == peer.id))
    }
    session.commit()  # no transaction (no write lock on SQLite) while the peer answers
    listed: dict[str, dict[str, PeerKey]] = {}
    if peer.kind == PEER_HUB:
        listed = _listed_keys(session, client, peer, peer_keys)
    else:
        accept_rotations(session, client, peer, peer_keys)
    session.commit()  # keys trusted (a rotation, a directory) stand whatever the round brings
    checkpoint = _checkpoint(client, peer, peer_keys)
    if checkpoint["size"] < state.checkpoint_size:
        raise SyncError(
            f"the feed shrank from {state.checkpoint_size} to {checkpoint['size']}"
            " entries: history was rewritten"
        )
    # Nothing is applied before every entry up to the checkpoint has arrived and matches its
    # Merkle root. Then each batch is checked (signatures, schema, personal data), and applied
    # at once: the checks of the next batch run while another process holds SQLite's write
    # lock. Millions of small objects are held meanwhile, with no cycle among them: the cyclic
    # garbage collector is paused while they arrive, and they are left out of its collections
    # (frozen) while they are checked and applied.
    with _collector_paused():
        received, signed = _receive(client, peer, state.cursor, checkpoint["size"])
        # Frozen before the collector runs again: its youngest generation holds every entry
        # received, and its first collection would walk them all.
        gc.freeze()
    try:
        # Until its batch is checked, an entry is refused: none can be stored unchecked.
        problems: list[str | None] = [UNCHECKED] * len(received)
        got = Received(received, signed, problems, _key_windows(peer_keys))
        cursor = state.cursor  # the batches' sequence numbers count from here

        def check(start: int, size: int) -> None:
            _check(peer, got, start, size, cursor, peer_keys, listed)

        return _apply_received(session, peer, state, checkpoint, got, relay, check)
    finally:
        gc.unfreeze()


UNCHECKED = "not checked"


@dataclass
class Received:
    """A peer's entries as they arrived, their payloads' canonical bytes, why each cannot be
    accepted (None: it can; UNCHECKED until its batch is checked), and the peer's keys as the
    checks saw them."""

    entries: list[Any]
    signed: list[bytes | None]
    problems: list[str | None]
    keys: set[tuple[Any, ...]]


def _key_windows(peer_keys: dict[str, PeerKey]) -> set[tuple[Any, ...]]:
    return {(k.key_id, k.valid_from, k.valid_until, k.revoked_at) for k in peer_keys.values()}


def _recheck_keys(session: Session, peer: Peer, got: Received, start: int, size: int) -> None:
    """In a batch's transaction: if the peer's keys changed while its entries arrived (an
    operator revoked one, say), check the batch's signing keys and times again."""
    current = {
        k.key_id: k
        for k in session.scalars(
            select(PeerKey)
            .where(PeerKey.peer_id == peer.id)
            .execution_options(populate_existing=True)
        )
    }
    if _key_windows(current) == got.keys:
        return
    for index in range(start, min(start + size, len(got.entries))):
        item = got.entries[index]
        if got.problems[index] is None and not isinstance(item, tuple):
            got.problems[index] = key_problem(current, item["key"], _time(item["payload"]["time"]))


@contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _receive(
    client: httpx.Client, peer: Peer, cursor: int, size: int
) -> tuple[list[Any], list[bytes | None]]:
    """The entries after `cursor` up to `size`, each with its payload's canonical bytes (its
    Merkle leaf and what its key signed; None for an entry that could not be read)."""
    received: list[Any] = []
    signed: list[bytes | None] = []
    for page in _pages(client, peer, cursor, size):
        received += page
        signed += [None if isinstance(item, tuple) else _signed(item) for item in page]
    return received, signed


def _check(
    peer: Peer,
    got: Received,
    start: int,
    size: int,
    cursor: int,
    peer_keys: dict[str, PeerKey],
    listed: dict[str, dict[str, PeerKey]],
) -> None:
    """Why each entry of a batch cannot be accepted (None: it can), into `got.problems`."""
    for index in range(start, min(start + size, len(got.entries))):
        item, data = got.entries[index], got.signed[index]
        seq = cursor + index + 1
        if isinstance(item, tuple):
            got.problems[index] = f"unreadable entry: {item[2]}"
        elif peer.kind == PEER_HUB:
            got.problems[index] = relay_problem(
                item,
                origin=peer.origin,
                expected_seq=seq,
                peer_keys=peer_keys,
                listed=listed,
                signed=data,
            )
        else:
            got.problems[index] = entry_problem(
                item, origin=peer.origin, expected_seq=seq, peer_keys=peer_keys, signed=data
            )


def _apply_received(
    session: Session,
    peer: Peer,
    state: PeerSync,
    checkpoint: dict[str, Any],
    got: Received,
    relay: Relay | None,
    check: Callable[[int, int], None],
) -> Round:
    """Check the received entries against the checkpoint's Merkle root, then check each batch
    (`check(start, size)` fills `got.problems`) and apply it, committed with the cursor and the
    frontier."""
    received, signed, problems = got.entries, got.signed, got.problems
    leaves = [leaf_hash(data) if data is not None else None for data in signed]
    frontier = load_frontier(state.frontier) if state.frontier is not None else None
    complete = state.cursor + len(received) == checkpoint["size"]
    if frontier is not None and None not in leaves and complete:
        if frontier_root(extend(frontier, leaves)).hex() != checkpoint["root"]:  # type: ignore[arg-type]
            raise SyncError(
                "the checkpoint's Merkle root does not match the entries received:"
                " history was rewritten"
            )
    result = Round()
    for start in range(0, len(received), COMMIT_EVERY):
        batch = received[start : start + COMMIT_EVERY]
        check(start, len(batch))
        # What each accepted entry stores (a hub's entry carries the origin's envelope), made
        # before the batch's transaction begins.
        accepted: list[tuple[dict[str, Any], bytes | None] | None] = []
        for offset, item in enumerate(batch):
            if problems[start + offset] is not None:
                accepted.append(None)
            elif peer.kind == PEER_HUB:
                accepted.append((item["payload"]["envelope"], None))
            else:
                accepted.append((item, signed[start + offset]))
        staged: list[dict[str, Any] | None] = []
        envelopes: list[bytes | None] = []  # the canonical envelopes, relayed as they are
        for entry in accepted:
            envelope = _envelope_bytes(*entry) if entry is not None else None
            staged.append(
                stage(*entry, envelope, relayed=relay is not None) if entry is not None else None
            )
            envelopes.append(envelope)
        writes = Writes(session, [rid for rid in map(_record_id, batch) if rid])
        _recheck_keys(session, peer, got, start, len(batch))
        relayed: list[tuple[dict[str, Any], bytes]] = []
        relayed_rows: list[dict[str, Any]] = []
        for offset, item in enumerate(batch):
            seq = state.cursor + offset + 1
            problem, row, entry = problems[start + offset], staged[offset], accepted[offset]
            encoded = envelopes[offset]
            if problem is not None or row is None or entry is None or encoded is None:
                outcome, record = f"refused: {problem}", None
            else:
                outcome, record = apply(writes, row)
            if record is not None and entry is not None and encoded is not None:
                result.applied += 1
                if relay is not None:
                    relayed.append((entry[0], encoded))
                    relayed_rows.append(record)
            elif outcome == "unchanged":
                result.unchanged += 1
            else:
                rid = None if isinstance(item, tuple) else _record_id(item)
                _refuse(session, peer, seq, rid, outcome.removeprefix("refused: "))
                result.refused += 1
        if relay is not None:  # the envelope is kept once, in the relay entry
            seqs = feed.relay_many(session, relay.key, origin=relay.origin, envelopes=relayed)
            for stored, relay_seq in zip(relayed_rows, seqs, strict=True):
                stored["relay_seq"] = relay_seq
        writes.write(session)
        batch_leaves = leaves[start : start + len(batch)]
        if frontier is not None and None not in batch_leaves:
            frontier = extend(frontier, batch_leaves)  # type: ignore[arg-type]
        else:
            frontier = None  # an unreadable entry puts the root beyond reach from now on
        state.cursor += len(batch)
        state.frontier = None if frontier is None else dump_frontier(frontier)
        session.commit()
    if complete:
        state.checkpoint_size = checkpoint["size"]
        if frontier is not None:
            state.checkpoint_root = checkpoint["root"]
    session.flush()
    return result


def backoff(failures: int, rng: Callable[[], float] = random.random) -> timedelta:
    """Exponential, capped, with jitter so that retries of many peers do not align."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** min(failures, 16)))
    return timedelta(seconds=delay.total_seconds() * (0.5 + rng()))


def due_peers(session: Session) -> list[Peer]:
    """Peers whose next attempt is due (a peer being synced right now is skipped by its lease,
    not by a flag a dead process could leave behind)."""
    now = utcnow()
    rows = session.execute(
        select(Peer, PeerSync)
        .outerjoin(PeerSync, PeerSync.peer_id == Peer.id)
        .where(Peer.active, Peer.kind != PEER_LISTED)
    )
    return [
        peer
        for peer, state in rows
        if state is None or state.next_attempt_at is None or state.next_attempt_at <= now
    ]


LEASE_LOCK = 7220002


@contextmanager
def peer_lease(engine: Engine, peer_id: int) -> Iterator[bool]:
    """The right to sync one peer, held while this process does it. The lock belongs to a
    database connection (PostgreSQL) or an open file (SQLite), so a process that dies, even by
    kill -9, frees it at once: no job stays "running" after its process is gone, and two
    processes never pull the same peer at the same time."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            got = bool(
                conn.execute(
                    text("SELECT pg_try_advisory_lock(:k, :p)"), {"k": LEASE_LOCK, "p": peer_id}
                ).scalar()
            )
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(
                        text("SELECT pg_advisory_unlock(:k, :p)"), {"k": LEASE_LOCK, "p": peer_id}
                    )
                    conn.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield True
        return
    path = Path(database)
    with path.with_name(f"{path.name}.sync-{peer_id}.lock").open("a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True  # closing the file (or the process ending) releases the lock


def record_failure(session: Session, peer: Peer, error: str) -> None:
    state = session.get(PeerSync, peer.id) or PeerSync(peer_id=peer.id, cursor=0, checkpoint_size=0)
    session.add(state)
    now = utcnow()
    state.failures += 1
    state.last_attempt_at, state.last_error = now, error[:2000]
    state.next_attempt_at = now + backoff(state.failures)
    state.running_since = None
    _refuse(session, peer, None, None, error)


def record_success(session: Session, peer: Peer, interval: timedelta) -> None:
    state = session.get(PeerSync, peer.id)
    assert state is not None
    now = utcnow()
    state.failures, state.last_error, state.running_since = 0, None, None
    state.last_attempt_at = state.last_success_at = now
    state.next_attempt_at = now + interval


def run_round(
    sessions: Callable[[], Session],
    *,
    interval: timedelta,
    timeout: float = 30.0,
    search: Any = None,
    settings: Settings | None = None,
    index: bool = True,
    workers: int | None = None,
) -> dict[str, Round | str]:
    """Sync every due peer, each in its own transactions: a failure is recorded on that peer
    (with backoff) and the others go on. Then, with `search` and `index`, the search index
    catches up with what the round (or an interrupted earlier one) changed. Returns what
    happened per origin.

    Peers with a large backlog are synced side by side in up to `workers` processes (by
    default `settings.hub_sync_workers`, else one): this one and helpers started for the round,
    which stop with it (and with this process, should it be killed)."""
    outcome: dict[str, Round | str] = {}
    with sessions() as session:
        engine = session.get_bind()
        due = [(p.id, p.origin, p.base_url) for p in due_peers(session)]
    assert isinstance(engine, Engine)
    if workers is None:
        workers = settings.sync_workers if settings else 1
    job = Job(engine.url.render_as_string(hide_password=False), interval, timeout, settings)
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0)) as client:
        order, helpers = _plan(client, engine, due, workers)
        if helpers:
            outcome = _in_processes(job, sessions, engine, client, order, helpers)
        else:
            for peer_id, origin in order:
                result = _leased(job, sessions, engine, client, peer_id)
                if result is not None:
                    outcome[origin] = result
    if search is not None and index:
        try:
            catch_up_index(sessions, search)
        except Exception:  # the import stands; what is pending is tried again next round
            structlog.get_logger().exception("search_index_catch_up_failed")
    return outcome


def sync_one(
    sessions: Callable[[], Session],
    peer_id: int,
    *,
    interval: timedelta,
    timeout: float = 30.0,
    settings: Settings | None = None,
) -> Round | str | None:
    """One peer's job, as a Celery task runs it (a worker's pool runs peers side by side);
    None when another process is syncing that peer."""
    with sessions() as session:
        engine = session.get_bind()
    assert isinstance(engine, Engine)
    job = Job(engine.url.render_as_string(hide_password=False), interval, timeout, settings)
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0)) as client:
        return _leased(job, sessions, engine, client, peer_id)


@dataclass(frozen=True)
class Job:
    """What a process needs to sync peers in a round."""

    database_url: str
    interval: timedelta
    timeout: float
    settings: Settings | None


# A helper process costs about half a second to start (imports): worth it only for a peer with
# at least this many entries waiting.
PARALLEL_BACKLOG = 2000
PLAN_TIMEOUT = 10.0  # seconds to read every due peer's checkpoint for the plan


def _plan(
    client: httpx.Client, engine: Engine, due: list[tuple[int, str, str]], workers: int
) -> tuple[list[tuple[int, str]], int]:
    """The order to sync the due peers in (largest backlog first) and how many helper
    processes to start. Backlogs come from each peer's checkpoint, unverified: they only
    schedule the work, `sync_peer` verifies everything it applies."""
    order = [(peer_id, origin) for peer_id, origin, _ in due]
    if workers < 2 or len(due) < 2 or not _can_have_helpers(engine):
        return order, 0
    with engine.connect() as conn:
        reader = conn.execution_options(**{READ_ONLY: True})  # no write lock on SQLite
        cursors = {p: c for p, c in reader.execute(select(PeerSync.peer_id, PeerSync.cursor))}
    backlog: dict[int, int] = {}
    deadline = time.monotonic() + PLAN_TIMEOUT  # slow peers delay the round this much at most
    token = _job_deadline.set(deadline)
    try:
        for peer_id, _origin, base_url in due:
            left = deadline - time.monotonic()
            if left <= 0:
                backlog[peer_id] = 0
                continue
            try:
                checkpoint = fetch_json(
                    client, f"{base_url}/federation/v1/checkpoint", timeout=min(left, 5.0)
                )
                size = checkpoint["checkpoint"]["size"]
                backlog[peer_id] = size - cursors.get(peer_id, 0) if isinstance(size, int) else 0
            except (SyncError, CanonicalError, httpx.HTTPError, ValueError, LookupError, TypeError):
                backlog[peer_id] = 0  # `sync_peer` will say what is wrong with this peer
    finally:
        _job_deadline.reset(token)
    order.sort(key=lambda peer: -backlog[peer[0]])
    large = sum(1 for size in backlog.values() if size >= PARALLEL_BACKLOG)
    return order, max(0, min(workers, large) - 1)


def _can_have_helpers(engine: Engine) -> bool:
    """Not in a daemonic process (a Celery prefork worker: its pool runs peers side by side),
    and not on an in-memory database another process cannot open."""
    database = engine.url.database
    in_memory = engine.dialect.name == "sqlite" and (not database or database == ":memory:")
    return not multiprocessing.current_process().daemon and not in_memory


def _leased(
    job: Job,
    sessions: Callable[[], Session],
    engine: Engine,
    client: httpx.Client,
    peer_id: int,
) -> Round | str | None:
    """One peer's job under its lease; None when another process holds it."""
    with peer_lease(engine, peer_id) as mine:
        if not mine:
            return None  # another process is syncing this peer right now
        with sessions() as session:
            state = session.get(PeerSync, peer_id) or PeerSync(
                peer_id=peer_id, cursor=0, checkpoint_size=0, frontier=[]
            )
            if state.next_attempt_at is not None and state.next_attempt_at > utcnow():
                return None  # synced (or failed, backing off) since it was found due
            state.running_since = utcnow()
            session.add(state)
            session.commit()
        return _one(sessions, engine, peer_id, client, job.interval, job.settings)


def _work(
    job: Job,
    sessions: Callable[[], Session],
    engine: Engine,
    client: httpx.Client,
    tasks: Any,
    results: Any,
) -> None:
    """Take peers from `tasks` until a None, and say what became of each on `results`."""
    while (task := tasks.get()) is not None:
        peer_id, origin = task
        results.put(("begin", peer_id, origin, None))
        try:
            result = _leased(job, sessions, engine, client, peer_id)
        except Exception as exc:  # the database, say: the other peers go on
            structlog.get_logger().exception("peer_sync_failed", origin=origin)
            result = f"{type(exc).__name__}: {exc}"
        results.put(("end", peer_id, origin, result))


def _helper(job: Job, tasks: Any, results: Any, parent: int) -> None:
    """A helper process of a round: the same work as the process that started it."""
    _die_with(parent)
    # A forked helper has its parent's handlers (the demo's only set a flag): the defaults
    # instead, so that Ctrl-C and SIGTERM stop it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    engine = create_sync_engine(job.database_url)
    try:
        with httpx.Client(timeout=httpx.Timeout(job.timeout, connect=5.0)) as client:
            _work(job, lambda: Session(engine), engine, client, tasks, results)
    finally:
        engine.dispose()
        results.put(("done", os.getpid(), "", None))


def _die_with(parent: int) -> None:
    """Be killed when the process that started this one dies, even by kill -9: a helper must
    not go on importing behind the back of a restarted hub."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (AttributeError, OSError):  # no prctl in this C library
            structlog.get_logger().warning("sync_helper_may_outlive_its_parent")
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


PR_SET_PDEATHSIG = 1


def _in_processes(
    job: Job,
    sessions: Callable[[], Session],
    engine: Engine,
    client: httpx.Client,
    order: list[tuple[int, str]],
    helpers: int,
) -> dict[str, Round | str]:
    """Sync `order` in this process and `helpers` more, each taking the next peer when done
    with one. A helper that dies leaves its peer failed (with backoff), not "running"."""
    context = _context(engine)
    tasks, results = context.Queue(), context.Queue()
    started = []
    for n in range(helpers):
        process = context.Process(
            target=_helper, args=(job, tasks, results, os.getpid()), name=f"integra-sync-{n}"
        )
        try:
            process.start()
        except Exception:  # this process takes the peers the helper would have taken
            structlog.get_logger().exception("sync_helper_not_started")
            continue
        started.append(process)
    # Put once the helpers are started: the first put starts the queue's feeder thread, and a
    # helper is forked only from a process that runs one thread.
    for task in order:
        tasks.put(task)
    for _ in range(helpers + 1):
        tasks.put(None)
    mine = Said()  # what this process says stays here; only the helpers' goes through a pipe
    try:
        _work(job, sessions, engine, client, tasks, mine)
    finally:
        outcome, begun = _collect(results, started, mine)
        for channel in (tasks, results):  # their pipes and feeder threads, not left to the GC
            channel.close()
            channel.join_thread()
    codes = ", ".join(str(p.exitcode) for p in started)
    for peer_id, origin in begun.items():  # a helper died with this peer in hand
        error = f"the process syncing this peer stopped (exit codes {codes})"
        with sessions() as session:
            peer = session.get(Peer, peer_id)
            if peer is not None:
                record_failure(session, peer, error)
                session.commit()
        outcome[origin] = error
    return outcome


def _context(engine: Engine) -> ForkContext | SpawnContext:
    if _start_method(engine) == "fork":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _start_method(engine: Engine) -> str:
    """How helpers start: forked when this process runs a single thread (`integra hub sync`)
    and keeps no database connection open between uses (a pooled one would be shared with the
    child): at once, with what this process has loaded (a spawned helper spends about a second
    importing it again, and the round waits for its slowest process). Spawned otherwise (the
    embedded server runs rounds from a thread): a forked child could inherit a lock another
    thread held, and wait on it for ever."""
    single = threading.active_count() == 1 and isinstance(engine.pool, NullPool)
    return "fork" if single and "fork" in multiprocessing.get_all_start_methods() else "spawn"


class Said(list[tuple[str, int, str, Any]]):
    """What a process says of its peers, kept in place (the round's own process)."""

    def put(self, message: tuple[str, int, str, Any]) -> None:
        self.append(message)


def _collect(
    results: Any, started: list[Any], mine: Said
) -> tuple[dict[str, Round | str], dict[int, str]]:
    """Read what the helpers say until each has said it is done or has stopped (read while
    waiting: a process does not end before what it said is read), then join them. Returns
    the outcomes, this process's included, and the peers begun but never finished."""
    outcome: dict[str, Round | str] = {}
    begun: dict[int, str] = {}
    messages: list[tuple[str, int, str, Any]] = list(mine)
    waiting = {process.pid: process for process in started}
    while waiting:
        stopped = [pid for pid, process in waiting.items() if process.exitcode is not None]
        try:
            messages.append(results.get(timeout=0.2))
        except queue.Empty:
            for pid in stopped:  # it stopped before this read, and all it wrote has been read
                waiting.pop(pid)
            continue
        kind, pid, _, _ = messages[-1]
        if kind == "done":
            waiting.pop(pid, None)
    for kind, peer_id, origin, result in messages:
        if kind == "begin":
            begun[peer_id] = origin
        elif kind == "end":
            begun.pop(peer_id, None)
            if result is not None:
                outcome[origin] = result
    for process in started:
        process.join()
    return outcome, begun


INDEX_LEASE = 0  # peer ids start at 1: this lease is the search index's


def catch_up_index(sessions: Callable[[], Session], search: Any) -> int:
    """`index_pending` in one process at a time; 0 when another one is at it."""
    with sessions() as session:
        engine = session.get_bind()
        assert isinstance(engine, Engine)
        with peer_lease(engine, INDEX_LEASE) as mine:
            return index_pending(session, search) if mine else 0


def _one(
    sessions: Callable[[], Session],
    engine: Engine,
    peer_id: int,
    client: httpx.Client,
    interval: timedelta,
    settings: Settings | None,
) -> Round | str:
    # One connection for the whole job, each batch's transaction begun and committed on it (no
    # transaction open between them): not a connection opened and closed for each batch.
    with engine.connect() as connection, Session(bind=connection) as session:
        peer = session.get(Peer, peer_id)
        assert peer is not None
        token = _job_deadline.set(time.monotonic() + JOB_TIMEOUT.total_seconds())
        try:
            relay = relay_for(session, settings) if settings else None
            result = sync_peer(session, peer, client, relay)
            record_success(session, peer, interval)
            session.commit()
            return result
        except (SyncError, CanonicalError, httpx.HTTPError, ValueError, SQLAlchemyError) as exc:
            session.rollback()  # a database error too ("database is locked"): backoff
            error = f"{type(exc).__name__}: {exc}"
        finally:
            _job_deadline.reset(token)
    with sessions() as session:
        peer = session.get(Peer, peer_id)
        assert peer is not None
        record_failure(session, peer, error)
        session.commit()
    return error
