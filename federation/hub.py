"""The hub's side of signed sync: pull each enrolled node's feed, verify, apply.

Every entry is checked on its own (envelope shape, enrolled and unrevoked key, signature over
the canonical payload, origin namespace, sequence, federation schema, personal-data detectors,
version order) and every checkpoint against the Merkle root of everything received, so a
rewritten history is noticed. Refused entries are kept with their reason and the rest of the
feed is still applied. The cursor, the checkpoint and the records change in one transaction:
a crash or a repeated delivery leaves the same state.
"""

import hashlib
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from federation import keys
from federation.canonical import CanonicalError, canonical, parse_strict
from federation.gate import Gate
from federation.merkle import leaf_hash, root
from federation.models import FederatedRecord, Peer, PeerKey, PeerLeaf, PeerSync, SyncRefusal
from federation.projection import SCHEMAS
from node.db import utcnow
from practices.search.port import IndexDocument

MAX_PAGE_BYTES = 4 * 1024 * 1024
PAGE_SIZE = 200
ENVELOPE_KEYS = {"payload", "key", "sig"}
PAYLOAD_KEYS = {"origin", "seq", "type", "id", "version", "op", "body", "time"}
HUB_GATE = Gate()  # the hub knows no people: addresses, numbers and identifiers only
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
JOB_TIMEOUT = timedelta(minutes=10)
UNREADABLE = b"\0" * 32  # the leaf kept for an entry that could not be parsed


class SyncError(Exception):
    """The sync round with a peer stopped; recorded on its status, retried with backoff."""


@dataclass
class Round:
    applied: int = 0
    unchanged: int = 0
    refused: int = 0
    reasons: list[str] = field(default_factory=list)


def fetch_json(client: httpx.Client, url: str, params: dict[str, Any] | None = None) -> Any:
    """GET with a hard size limit, parsed strictly (no duplicate keys, floats or deep nesting)."""
    with client.stream("GET", url, params=params) as response:
        if response.status_code != 200:
            raise SyncError(f"{url} answered {response.status_code}")
        data = bytearray()
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > MAX_PAGE_BYTES:
                raise CanonicalError(f"larger than {MAX_PAGE_BYTES} bytes")
    return parse_strict(bytes(data), max_bytes=MAX_PAGE_BYTES)


def _time(text: Any) -> datetime | None:
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=utcnow().tzinfo)
    except ValueError:
        return None


def key_problem(
    peer_keys: dict[str, PeerKey], key_id: Any, signed_at: datetime | None
) -> str | None:
    key = peer_keys.get(key_id) if isinstance(key_id, str) else None
    if key is None:
        return f"signed by a key this hub has not enrolled ({str(key_id)[:80]})"
    if signed_at is None:
        return "no valid signing time"
    if key.revoked_at is not None and signed_at > key.revoked_at:
        return f"signed by key {key.key_id} after its revocation"
    if signed_at < key.valid_from - timedelta(minutes=5) or (
        key.valid_until is not None and signed_at > key.valid_until
    ):
        return f"signed outside the validity window of key {key.key_id}"
    return None


def entry_problem(
    envelope: Any, *, origin: str, expected_seq: int, peer_keys: dict[str, PeerKey]
) -> str | None:
    """Why an entry cannot be accepted, or None. Checks cheapest first."""
    if not isinstance(envelope, dict) or set(envelope) != ENVELOPE_KEYS:
        return "not an envelope {payload, key, sig}"
    payload = envelope["payload"]
    if not isinstance(payload, dict) or set(payload) != PAYLOAD_KEYS:
        return "the payload does not have exactly the fields of a feed entry"
    if payload["origin"] != origin:
        return f"an entry of origin {str(payload['origin'])[:10]} in the feed of {origin}"
    if not isinstance(payload["id"], str) or not payload["id"].startswith(f"{origin}:"):
        return f"record id {str(payload['id'])[:80]} is outside the {origin} namespace"
    if payload["seq"] != expected_seq:
        return f"sequence {payload['seq']} where {expected_seq} was due"
    problem = key_problem(peer_keys, envelope["key"], _time(payload["time"]))
    if problem:
        return problem
    signed = canonical(payload)
    if not keys.verify(peer_keys[envelope["key"]].public_key, signed, str(envelope["sig"])):
        return "the signature does not match the entry (altered in transit or forged)"
    return body_problem(payload)


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
    start = body.get("start_date")
    return IndexDocument(
        record_id=search_id(record.record_id),
        title=str(body.get("title", "")),
        title_text=" \n".join(titles),
        body_text=" \n".join(texts),
        sort_date=date.fromisoformat(start) if start else None,
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


def apply(session: Session, envelope: dict[str, Any], search: Any = None) -> str:
    """Store an accepted entry; a version never goes backwards and a repeat changes nothing."""
    payload = envelope["payload"]
    body_hash = hashlib.sha256(canonical(payload["body"])).hexdigest()
    record = session.get(FederatedRecord, payload["id"])
    if record is not None:
        if payload["version"] < record.version:
            return f"refused: a replay of version {payload['version']} (holding {record.version})"
        if payload["version"] == record.version:
            if body_hash == record.body_hash and (payload["op"] == "withdraw") == record.withdrawn:
                return "unchanged"
            return f"refused: version {payload['version']} already held with other content"
    else:
        record = FederatedRecord(record_id=payload["id"])
        session.add(record)
    record.origin = payload["origin"]
    record.record_type = payload["type"]
    record.version = payload["version"]
    record.withdrawn = payload["op"] == "withdraw"
    record.body = payload["body"]
    record.body_hash = body_hash
    record.envelope = canonical(envelope).decode("utf-8")
    record.origin_seq = payload["seq"]
    record.received_at = utcnow()
    record.search_id = search_id(record.record_id)
    if search is not None:
        if record.withdrawn:
            search.remove(session, [record.search_id])
        else:
            search.upsert(session, [index_document(record)])
    return "applied"


def _refuse(session: Session, peer: Peer, seq: int | None, rid: Any, reason: str) -> None:
    session.add(
        SyncRefusal(
            peer_id=peer.id,
            seq=seq,
            reason=reason,
            record_id=str(rid)[:80] if rid is not None else None,
        )
    )


def _checkpoint(client: httpx.Client, peer: Peer, peer_keys: dict[str, PeerKey]) -> dict[str, Any]:
    signed = fetch_json(client, f"{peer.base_url}/federation/v1/checkpoint")
    if not isinstance(signed, dict) or set(signed) != {"checkpoint", "key", "sig"}:
        raise SyncError("the checkpoint is not {checkpoint, key, sig}")
    body = signed["checkpoint"]
    if not isinstance(body, dict) or set(body) != {"origin", "size", "root", "time"}:
        raise SyncError("the checkpoint does not have exactly origin, size, root, time")
    if body["origin"] != peer.origin or not isinstance(body["size"], int):
        raise SyncError("the checkpoint is not this peer's")
    problem = key_problem(peer_keys, signed["key"], _time(body["time"]))
    if problem or not keys.verify(
        peer_keys[signed["key"]].public_key, canonical(body), str(signed["sig"])
    ):
        raise SyncError(f"the checkpoint's signature is not valid ({problem or 'mismatch'})")
    return body


def _pages(client: httpx.Client, peer: Peer, after: int, upto: int) -> list[Any]:
    """Entries after `after` up to `upto`, halving the page size when a page is unreadable."""
    out: list[Any] = []
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
            out.append(("unreadable", after + 1, str(exc)))  # this one entry cannot be read
            after += 1
            limit = PAGE_SIZE
            continue
        entries = page.get("entries") if isinstance(page, dict) else None
        if not isinstance(entries, list) or not entries:
            break
        out += [e for e in entries][: upto - after]
        after += len(entries)
    return out


def sync_peer(session: Session, peer: Peer, client: httpx.Client, search: Any = None) -> Round:
    """One round with one peer, in the caller's transaction."""
    state = session.get(PeerSync, peer.id) or PeerSync(peer_id=peer.id, cursor=0, checkpoint_size=0)
    session.add(state)
    peer_keys = {
        k.key_id: k for k in session.scalars(select(PeerKey).where(PeerKey.peer_id == peer.id))
    }
    checkpoint = _checkpoint(client, peer, peer_keys)
    if checkpoint["size"] < state.checkpoint_size:
        raise SyncError(
            f"the feed shrank from {state.checkpoint_size} to {checkpoint['size']}"
            " entries: history was rewritten"
        )
    received = _pages(client, peer, state.cursor, checkpoint["size"])
    leaves = [
        bytes.fromhex(h)
        for h in session.scalars(
            select(PeerLeaf.leaf).where(PeerLeaf.peer_id == peer.id).order_by(PeerLeaf.seq)
        )
    ]
    new_leaves: list[tuple[int, bytes | None]] = []
    for offset, item in enumerate(received):
        seq = state.cursor + offset + 1
        if isinstance(item, tuple):
            new_leaves.append((seq, None))
        else:
            payload = item.get("payload") if isinstance(item, dict) else None
            new_leaves.append((seq, leaf_hash(canonical(payload)) if payload is not None else None))
    # An entry the hub could not read leaves the log's root beyond its reach from then on.
    readable = all(leaf is not None for _, leaf in new_leaves) and UNREADABLE not in leaves
    if readable and len(leaves) + len(new_leaves) == checkpoint["size"]:
        if root(leaves + [leaf for _, leaf in new_leaves]).hex() != checkpoint["root"]:  # type: ignore[misc]
            raise SyncError(
                "the checkpoint's Merkle root does not match the entries received:"
                " history was rewritten"
            )
    result = Round()
    for offset, item in enumerate(received):
        seq = state.cursor + offset + 1
        leaf = new_leaves[offset][1]
        session.add(PeerLeaf(peer_id=peer.id, seq=seq, leaf=(leaf or UNREADABLE).hex()))
        if isinstance(item, tuple):
            _refuse(session, peer, seq, None, f"unreadable entry: {item[2]}")
            result.refused += 1
            continue
        problem = entry_problem(item, origin=peer.origin, expected_seq=seq, peer_keys=peer_keys)
        outcome = apply(session, item, search) if problem is None else f"refused: {problem}"
        if outcome.startswith("refused"):
            rid = (
                item["payload"].get("id")
                if isinstance(item, dict) and isinstance(item.get("payload"), dict)
                else None
            )
            _refuse(session, peer, seq, rid, outcome.removeprefix("refused: "))
            result.refused += 1
        elif outcome == "applied":
            result.applied += 1
        else:
            result.unchanged += 1
    state.cursor += len(received)
    if readable:
        state.checkpoint_size, state.checkpoint_root = checkpoint["size"], checkpoint["root"]
    session.flush()
    return result


def backoff(failures: int, rng: Callable[[], float] = random.random) -> timedelta:
    """Exponential, capped, with jitter so that retries of many peers do not align."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** min(failures, 16)))
    return timedelta(seconds=delay.total_seconds() * (0.5 + rng()))


def due_peers(session: Session) -> list[Peer]:
    now = utcnow()
    stale = now - JOB_TIMEOUT
    rows = session.execute(
        select(Peer, PeerSync).outerjoin(PeerSync, PeerSync.peer_id == Peer.id).where(Peer.active)
    )
    return [
        peer
        for peer, state in rows
        if state is None
        or (
            (state.next_attempt_at is None or state.next_attempt_at <= now)
            and (state.running_since is None or state.running_since < stale)
        )
    ]


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
) -> dict[str, Round | str]:
    """Sync every due peer, each in its own transactions: a failure is recorded on that peer
    (with backoff) and the others go on. Returns what happened per origin."""
    outcome: dict[str, Round | str] = {}
    with sessions() as session:
        due = [(p.id, p.origin) for p in due_peers(session)]
        for peer_id, _ in due:
            state = session.get(PeerSync, peer_id) or PeerSync(
                peer_id=peer_id, cursor=0, checkpoint_size=0
            )
            state.running_since = utcnow()
            session.add(state)
        session.commit()
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0)) as client:
        for peer_id, origin in due:
            outcome[origin] = _one(sessions, peer_id, client, interval, search)
    return outcome


def _one(
    sessions: Callable[[], Session],
    peer_id: int,
    client: httpx.Client,
    interval: timedelta,
    search: Any,
) -> Round | str:
    with sessions() as session:
        peer = session.get(Peer, peer_id)
        assert peer is not None
        try:
            result = sync_peer(session, peer, client, search)
            record_success(session, peer, interval)
            session.commit()
            return result
        except (SyncError, CanonicalError, httpx.HTTPError, ValueError) as exc:
            session.rollback()
            error = f"{type(exc).__name__}: {exc}"
    with sessions() as session:
        peer = session.get(Peer, peer_id)
        assert peer is not None
        record_failure(session, peer, error)
        session.commit()
    return error
