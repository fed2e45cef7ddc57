"""This node's signed, append-only feed of shareable records.

Each entry `{v: 2, origin, seq, type, id, version, op, body_hash, time}` is canonicalised
(RFC 8785) and signed on its own, so any copy of a record can be verified wherever it travels;
the signed text is stored as is, and the body (whose hash it signs) beside it, so that a signed
redaction (`op: redact`) can purge the body while the log still verifies. Entries written
before feed v2 carry their body inside the signed payload (`body`, no `v`): a redaction purges
those whole, keeping their Merkle leaf. Appends are serialised so that sequence numbers become
visible in order: a subscriber that has read up to seq N never misses an entry N-1 committed
later.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.orm import Session

from federation import keys
from federation.canonical import canonical
from federation.merkle import dump_frontier, extend, frontier_root, leaf_hash, load_frontier
from federation.models import V2_HEAD, FeedEntry, FeedState, NodeKey
from node.core.db import utcnow
from node.core.locks import FEED_LOCK
from node.core.settings import Settings

FEED_VERSION = 2
SCOPES = ("public", "network", "national")
# Why an origin purges bodies of its own records (a signed redaction's `reason`).
REDACTION_REASONS = ("personal_data", "erasure_request", "correction")
MAX_REDACTED = 1000  # versions (or seqs) one redaction may name


class FederationNotConfigured(RuntimeError):
    pass


def body_digest(body: Any) -> str:
    """The sha256 (hex) of a body's canonical form: what a v2 payload's `body_hash` says."""
    return hashlib.sha256(canonical(body)).hexdigest()


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
    """The record's last upsert or withdrawal (a redaction changes neither)."""
    return session.scalar(
        select(FeedEntry)
        .where(FeedEntry.record_id == rid, FeedEntry.op != "redact")
        .order_by(FeedEntry.seq.desc())
        .limit(1)
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
    redact: dict[str, Any] | None = None,
    scope: str = "public",
) -> FeedEntry | None:
    """Append a v2 entry unless it would repeat the record's last one (idempotent).

    The signed payload carries the hash of the record's `body` (null for a withdrawal or a
    redaction), and the body is stored beside it; a redaction (`op: redact`) names in its
    payload (`redact`) the versions and seqs whose bodies it purges, and why."""
    _lock_feed(session)
    body_hash = hashlib.sha256(canonical(body)).hexdigest()
    last = last_entry(session, rid)
    same = last is not None and (last.op, last.body_hash) == (op, body_hash)
    if same and redact is None and (op != "upsert" or last is None or last.scope == scope):
        return None
    if last is not None and version <= last.version and op != "redact":
        version = last.version + 1  # a version never goes backwards, even after a withdrawal
    state = _state(session)
    seq = state.size + 1
    payload: dict[str, Any] = {
        "v": FEED_VERSION,
        "origin": origin,
        "seq": seq,
        "type": record_type,
        "id": rid,
        "version": version,
        "op": op,
        "body_hash": body_hash if body is not None else None,
        "scope": scope,
        "time": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if redact is not None:
        payload["redact"] = redact
    signed = canonical(payload)
    leaf = leaf_hash(signed)
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
        body=canonical(body).decode("utf-8") if body is not None else None,
        leaf=leaf.hex(),
        scope=scope,
    )
    session.add(entry)
    state.size = seq
    state.frontier = dump_frontier(extend(load_frontier(state.frontier), [leaf]))
    session.flush()
    return entry


def _state(session: Session) -> FeedState:
    state = session.get(FeedState, 1, with_for_update=True)
    if state is None:
        state = FeedState(id=1, size=session.scalar(select(func.count(FeedEntry.seq))) or 0)
        state.frontier = dump_frontier(_frontier_of_log(session))
        session.add(state)
    return state


def relay_many(
    session: Session,
    key: keys.SigningKey,
    *,
    origin: str,
    envelopes: list[tuple[dict[str, Any], bytes, str | None]],
) -> list[int]:
    """(Hub) Append the origins' envelopes just applied, each with its canonical bytes and (v2)
    its canonical body, signed again under the hub's key and origin, in one go, and return
    their sequence numbers. A v2 envelope is relayed without its body, which travels beside the
    hub's entry (and its hash in it); a v1 envelope, whose body is inside it, as it is. The
    caller applies each (id, version) at most once, so no entry here can repeat an earlier
    one."""
    if not envelopes:
        return []
    _lock_feed(session)
    state = _state(session)
    created = utcnow()
    now = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    leaves, seq = [], state.size
    rows: list[dict[str, Any]] = []
    for envelope, encoded, body in envelopes:
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
        v2 = origin_payload.get("v") == FEED_VERSION
        scope = "public"
        if v2:
            payload["v"] = FEED_VERSION
            if "scope" in origin_payload:
                payload["scope"] = scope = origin_payload["scope"]
        # {"envelope": ..., the rest}: "envelope" sorts first (after "body_hash" in v2), so the
        # canonical payload is the envelope's canonical bytes followed by those of the rest
        # (values a peer check vetted).
        rest = canonical(payload, checked=True)
        signed = b'{"envelope":' + encoded + b"," + rest[1:]
        if v2:
            digest = canonical(origin_payload["body_hash"], checked=True)
            signed = b'{"body_hash":' + digest + b"," + signed[1:]
        leaf = leaf_hash(signed)
        leaves.append(leaf)
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
                "body": body if v2 else None,
                "leaf": leaf.hex(),
                "redacted": None,
                "scope": scope,
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


def entry_leaf(payload: str, leaf: str | None) -> bytes:
    """An entry's Merkle leaf: the one stored (a purged v1 entry keeps only that), else the
    hash of its signed text."""
    return bytes.fromhex(leaf) if leaf else leaf_hash(payload.encode("utf-8"))


def _frontier_of_log(session: Session) -> list[tuple[int, bytes]]:
    rows = session.execute(select(FeedEntry.payload, FeedEntry.leaf).order_by(FeedEntry.seq))
    return extend([], [entry_leaf(payload, leaf) for payload, leaf in rows])


PageRow = tuple[int, str, str, str, str | None, str | None, str | None, str]
# What an anonymous reader gets instead of a `network` entry's body (`withheld`).
WITHHELD = '"network"'


def page(session: Session, *, after: int, limit: int) -> list[PageRow]:
    """(seq, payload, key id, signature, body, leaf, redaction marker, scope) of the entries
    after `after`: the columns a page carries, read as rows (no ORM objects: a page is 500
    entries, served again and again)."""
    rows = session.execute(
        select(
            FeedEntry.seq,
            FeedEntry.payload,
            FeedEntry.key_id,
            FeedEntry.signature,
            FeedEntry.body,
            FeedEntry.leaf,
            FeedEntry.redacted,
            FeedEntry.scope,
        )
        .where(FeedEntry.seq > after)
        .order_by(FeedEntry.seq)
        .limit(limit)
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


def page_item(row: PageRow, *, network: bool = False) -> str:
    """One entry as a page carries it, written from the stored text (never parsed and written
    again): v1 `{payload, key, sig}`; v2 with its `body` beside (null once purged, with the
    `redacted` marker); a purged v1 entry as its marker `{seq, leaf, redacted}` only.

    A `network` entry goes whole only to a reader that may see it (`network`: an enrolled
    peer that signed its request); anyone else gets its signed payload without the body
    (`body` null, `withheld: "network"`): the signature and the Merkle leaf still check, and
    nothing of the record's text leaves (a v2 payload, a hub's relay of one too, carries only
    the body's hash)."""
    seq, payload, key, sig, body, leaf, redacted, scope = row
    if not payload:
        return f'{{"seq":{seq},"leaf":{json.dumps(leaf)},"redacted":{redacted or "{}"}}}'
    item = f'{{"payload":{payload},"key":{json.dumps(key)},"sig":{json.dumps(sig)}'
    if payload.startswith(V2_HEAD):
        if scope == "network" and not network and body is not None:
            return item + f',"body":null,"withheld":{WITHHELD}}}'
        item += f',"body":{body or "null"}'
        if redacted is not None:
            item += f',"redacted":{redacted}'
    return item + "}"


# --- redaction ----------------------------------------------------------------------------


def redaction_marker(seq: int, reason: str) -> str:
    """What a purged entry or record says instead of its body: the redaction that purged it."""
    return canonical({"by_seq": seq, "reason": reason}).decode("utf-8")


def purge_entries(
    session: Session, rid: str, versions: list[int], marker: str, *, upto: int | None = None
) -> int:
    """Purge the bodies of this feed's entries of record `rid` at these versions (below seq
    `upto`, if given): a v2 entry keeps its signed payload and loses its body; a v1 entry
    (body inside its signed text) keeps only its Merkle leaf. Returns how many were purged."""
    query = select(FeedEntry).where(
        FeedEntry.record_id == rid,
        FeedEntry.version.in_(versions),
        FeedEntry.redacted.is_(None),
        FeedEntry.op == "upsert",
    )
    if upto is not None:
        query = query.where(FeedEntry.seq < upto)
    purged = 0
    for entry in session.scalars(query):
        # v1 (a hub's v1 relay too): the body is in the signed text, which goes whole. A v2
        # entry (a hub's v2 relay too: the origin's envelope in it has no body) keeps it.
        if not entry.payload.startswith(V2_HEAD):
            entry.leaf = entry_leaf(entry.payload, entry.leaf).hex()
            entry.payload, entry.key_id, entry.signature = "", "", ""
        entry.body = None
        entry.redacted = marker
        purged += 1
    session.flush()
    return purged


def own_upserts(session: Session, rid: str, below: int | None = None) -> list[tuple[int, int]]:
    """(seq, version) of this feed's upserts of record `rid` whose bodies are not purged yet
    (below version `below`, if given)."""
    query = select(FeedEntry.seq, FeedEntry.version).where(
        FeedEntry.record_id == rid, FeedEntry.op == "upsert", FeedEntry.redacted.is_(None)
    )
    if below is not None:
        query = query.where(FeedEntry.version < below)
    return [(seq, version) for seq, version in session.execute(query.order_by(FeedEntry.seq))]


def redact(
    session: Session,
    key: keys.SigningKey,
    *,
    origin: str,
    record_type: str,
    rid: str,
    reason: str,
    below: int | None = None,
) -> FeedEntry | None:
    """Append a signed redaction of the bodies of record `rid` (those below version `below`,
    if given; else all) and purge them here. None when there is nothing left to purge."""
    if reason not in REDACTION_REASONS:
        raise ValueError(f"a redaction's reason is one of {', '.join(REDACTION_REASONS)}")
    targets = own_upserts(session, rid, below)[-MAX_REDACTED:]
    if not targets:
        return None
    last = last_entry(session, rid)
    assert last is not None
    versions = sorted({version for _, version in targets})
    statement = {"reason": reason, "seqs": [seq for seq, _ in targets], "versions": versions}
    entry = append(
        session,
        key,
        origin=origin,
        record_type=record_type,
        rid=rid,
        version=last.version,
        op="redact",
        redact=statement,
    )
    assert entry is not None
    marker = redaction_marker(entry.seq, reason)
    purge_entries(session, rid, versions, marker, upto=entry.seq)
    return entry


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
