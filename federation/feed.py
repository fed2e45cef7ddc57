"""This node's signed, append-only feed of shareable records.

Each entry `{origin, seq, type, id, version, op, body, time}` is canonicalised (RFC 8785) and
signed on its own, so any copy of a record can be verified wherever it travels; the signed text
is stored as is. Appends are serialised so that sequence numbers become visible in order: a
subscriber that has read up to seq N never misses an entry N-1 committed later.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.orm import Session

from federation import keys
from federation.canonical import canonical
from federation.merkle import dump_frontier, extend, frontier_root, leaf_hash, load_frontier
from federation.models import FeedEntry, FeedState, NodeKey
from node.core.db import utcnow
from node.core.locks import FEED_LOCK
from node.core.settings import Settings


class FederationNotConfigured(RuntimeError):
    pass


def origin_of(settings: Settings) -> str:
    if not settings.country:
        raise FederationNotConfigured("set INTEGRA_COUNTRY to this node's ISO country code")
    return settings.country


def record_id(origin: str, local_id: object) -> str:
    """Record ids are namespaced by origin: a node can only speak for its own records."""
    return f"{origin}:{local_id}"


def key_path(settings: Settings, key_id: str) -> Path:
    directory = settings.keys_dir or settings.data_dir / "keys"
    return directory / f"{key_id.removeprefix(keys.KEY_ID_PREFIX)}.pem"


def active_key(session: Session, settings: Settings) -> keys.SigningKey:
    row = session.scalar(
        select(NodeKey).where(NodeKey.retired_at.is_(None)).order_by(NodeKey.created_at.desc())
    )
    if row is None:
        raise FederationNotConfigured("no signing key: run `integra keys init`")
    key = keys.load(key_path(settings, row.key_id))
    if key.key_id != row.key_id:
        raise FederationNotConfigured(f"the key file does not hold key {row.key_id}")
    return key


@dataclass(frozen=True)
class Envelope:
    payload: dict[str, Any]
    key: str
    sig: str

    def as_json(self) -> dict[str, Any]:
        return {"payload": self.payload, "key": self.key, "sig": self.sig}


def _lock_feed(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SELECT pg_advisory_xact_lock({FEED_LOCK})"))
    # SQLite: every write transaction already holds the database write lock (BEGIN IMMEDIATE).


def last_entry(session: Session, rid: str) -> FeedEntry | None:
    return session.scalar(
        select(FeedEntry).where(FeedEntry.record_id == rid).order_by(FeedEntry.seq.desc()).limit(1)
    )


def append(
    session: Session,
    key: keys.SigningKey,
    *,
    origin: str,
    record_type: str,
    rid: str,
    version: int,
    op: str,
    body: dict[str, Any] | None = None,
    relayed: dict[str, Any] | None = None,
) -> FeedEntry | None:
    """Append an entry unless it would repeat the record's last one (idempotent).

    A node's own entry carries the record's `body`. A hub's entry carries instead the origin's
    signed envelope unchanged (`relayed`), so the record can still be traced to its origin."""
    _lock_feed(session)
    content = body if relayed is None else relayed
    body_hash = hashlib.sha256(canonical(content)).hexdigest()
    last = last_entry(session, rid)
    if last is not None and (last.op, last.body_hash) == (op, body_hash):
        return None
    if relayed is None and last is not None and version <= last.version:
        version = last.version + 1  # a version never goes backwards, even after a withdrawal
    state = session.get(FeedState, 1, with_for_update=True)
    if state is None:
        state = FeedState(id=1, size=session.scalar(select(func.count(FeedEntry.seq))) or 0)
        state.frontier = dump_frontier(_frontier_of_log(session))
        session.add(state)
    seq = state.size + 1
    payload: dict[str, Any] = {
        "origin": origin,
        "seq": seq,
        "type": record_type,
        "id": rid,
        "version": version,
        "op": op,
        ("body" if relayed is None else "envelope"): content,
        "time": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    signed = canonical(payload)
    entry = FeedEntry(
        seq=seq,
        record_type=record_type,
        record_id=rid,
        version=version,
        op=op,
        payload=signed.decode("utf-8"),
        body_hash=body_hash,
        key_id=key.key_id,
        signature=key.sign(signed),
    )
    session.add(entry)
    state.size = seq
    state.frontier = dump_frontier(extend(load_frontier(state.frontier), [leaf_hash(signed)]))
    session.flush()
    return entry


def relay_many(
    session: Session,
    key: keys.SigningKey,
    *,
    origin: str,
    envelopes: list[tuple[dict[str, Any], bytes]],
) -> list[int]:
    """(Hub) Append the origins' envelopes just applied, each with its canonical bytes, signed
    again under the hub's key and origin, in one go, and return their sequence numbers. The
    caller applies each (id, version) at most once, so no entry here can repeat an earlier one."""
    if not envelopes:
        return []
    _lock_feed(session)
    state = session.get(FeedState, 1, with_for_update=True)
    if state is None:
        state = FeedState(id=1, size=session.scalar(select(func.count(FeedEntry.seq))) or 0)
        state.frontier = dump_frontier(_frontier_of_log(session))
        session.add(state)
    created = utcnow()
    now = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    leaves, seq = [], state.size
    rows: list[dict[str, Any]] = []
    for envelope, encoded in envelopes:
        origin_payload = envelope["payload"]
        seq += 1
        payload = {
            "origin": origin,
            "seq": seq,
            "type": origin_payload["type"],
            "id": origin_payload["id"],
            "version": origin_payload["version"],
            "op": origin_payload["op"],
            "time": now,
        }
        # {"envelope": ..., the rest}: "envelope" sorts first, so the canonical payload is the
        # envelope's canonical bytes followed by those of the rest (values a peer check vetted).
        rest = canonical(payload, checked=True)
        signed = b'{"envelope":' + encoded + b"," + rest[1:]
        payload["envelope"] = envelope
        leaves.append(leaf_hash(signed))
        rows.append(
            {
                "seq": seq,
                "record_type": payload["type"],
                "record_id": payload["id"],
                "version": payload["version"],
                "op": payload["op"],
                "payload": signed.decode("utf-8"),
                "body_hash": hashlib.sha256(encoded).hexdigest(),
                "key_id": key.key_id,
                "signature": key.sign(signed),
                "created_at": created,
            }
        )
    session.connection().execute(insert(FEED), rows)  # one Core statement for the batch
    state.size = seq
    state.frontier = dump_frontier(extend(load_frontier(state.frontier), leaves))
    return [row["seq"] for row in rows]


def _feed_table() -> Table:
    table = FeedEntry.__table__
    assert isinstance(table, Table)
    return table


FEED = _feed_table()


def _frontier_of_log(session: Session) -> list[tuple[int, bytes]]:
    payloads = session.scalars(select(FeedEntry.payload).order_by(FeedEntry.seq))
    return extend([], [leaf_hash(p.encode("utf-8")) for p in payloads])


def page(session: Session, *, after: int, limit: int) -> list[tuple[int, str, str, str]]:
    """(seq, payload, key id, signature) of the entries after `after`: the columns a page
    carries, read as rows (no ORM objects: a page is 500 entries, served again and again)."""
    rows = session.execute(
        select(FeedEntry.seq, FeedEntry.payload, FeedEntry.key_id, FeedEntry.signature)
        .where(FeedEntry.seq > after)
        .order_by(FeedEntry.seq)
        .limit(limit)
    )
    return [(seq, payload, key_id, sig) for seq, payload, key_id, sig in rows]


def checkpoint(session: Session, key: keys.SigningKey, origin: str) -> dict[str, Any]:
    """The signed size and Merkle root of the whole feed, from the frontier kept by `append`."""
    state = session.get(FeedState, 1)
    frontier = load_frontier(state.frontier) if state else _frontier_of_log(session)
    body = {
        "origin": origin,
        "size": state.size if state else sum(size for size, _ in frontier),
        "root": frontier_root(frontier).hex(),
        "time": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return {"checkpoint": body, "key": key.key_id, "sig": key.sign(canonical(body))}
