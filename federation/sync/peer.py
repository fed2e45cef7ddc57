"""One peer's job: pull its feed (a node's own, or a hub's aggregate for a mirror), check every
entry, apply what passes, and record how the job went (with backoff after a failure).

Nothing is applied until everything up to the peer's signed checkpoint has arrived and matches
its Merkle root. Refused entries are kept with their reason and the rest of the feed is still
applied. The cursor, the frontier and the records change in one transaction per batch: a crash
or a repeated delivery leaves the same state."""

import gc
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from federation import feed
from federation.canonical import CanonicalError
from federation.merkle import dump_frontier, extend, frontier_root, leaf_hash, load_frontier
from federation.models import NOT_PULLED, PEER_HUB, Peer, PeerKey, PeerSync, SyncRefusal
from federation.signed_requests import signer_for
from federation.sync.checks import (
    AwaitingConfirmation,
    canonical_payload,
    entry_problem,
    envelope_part,
    is_marker,
    is_purged,
    is_withheld,
    key_problem,
    parse_time,
    relay_problem,
)
from federation.sync.client import (
    JOB_TIMEOUT,
    Limits,
    SyncError,
    fetch_checkpoint,
    job_deadline,
    job_limits,
    job_signer,
    judge_checkpoint,
    pages,
)
from federation.sync.directory import accept_rotations, listed_keys
from federation.sync.store import (
    Relay,
    Writes,
    apply,
    body_text,
    envelope_bytes,
    redact_records,
    refuse,
    relay_for,
    stage,
)
from node.core.db import utcnow
from node.core.locks import lease
from node.core.memory import collector_paused
from node.core.settings import Settings

COMMIT_EVERY = 500  # entries applied per transaction, each committed with its cursor
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
UNCHECKED = "not checked"
# An entry refused because its body or signature does not match may have had a byte flipped on
# the way: up to REFETCH_MAX of them a round are fetched once more, alone, before the refusal.
REFETCH_MAX = 16
IN_TRANSIT = "altered in transit"  # in the reasons of those checks


@dataclass
class Round:
    """What one round did with one peer's entries."""

    applied: int = 0
    unchanged: int = 0
    refused: int = 0
    redacted: int = 0  # entries whose bodies their origin purged: passed, nothing applied
    redactions: int = 0  # signed redactions applied
    withheld: int = 0  # `network` entries served without bodies (not a reader there): passed
    reasons: list[str] = field(default_factory=list)
    stale: str | None = None  # why the peer's checkpoint is stale, if it is


@dataclass
class Received:
    """A peer's entries as they arrived, their payloads' canonical bytes, why each cannot be
    accepted (None: it can; UNCHECKED until its batch is checked), and the peer's keys as the
    checks saw them."""

    entries: list[Any]
    payload_bytes: list[bytes | None]
    problems: list[str | None]
    keys: set[tuple[Any, ...]]


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
        listed = listed_keys(session, client, peer, peer_keys)
    else:
        accept_rotations(session, client, peer, peer_keys)
    session.commit()  # keys trusted (a rotation, a directory) stand whatever the round brings
    checkpoint = fetch_checkpoint(client, peer, peer_keys)
    refused = judge_checkpoint(state, checkpoint, job_limits.get().freshness)
    session.commit()  # the peer flagged stale (or not) whatever the round brings
    if refused is not None:
        raise SyncError(refused)
    # Nothing is applied before every entry up to the checkpoint has arrived and matches its
    # Merkle root. Then each batch is checked (signatures, schema, personal data), and applied
    # at once: the checks of the next batch run while another process holds SQLite's write
    # lock. Millions of small objects are held meanwhile, with no cycle among them: the cyclic
    # garbage collector is paused while they arrive, and they are left out of its collections
    # (frozen) while they are checked and applied.
    with collector_paused():
        received, payload_bytes = _receive(client, peer, state.cursor, checkpoint["size"])
        # Frozen before the collector runs again: its youngest generation holds every entry
        # received, and its first collection would walk them all.
        gc.freeze()
    try:
        # Until its batch is checked, an entry is refused: none can be stored unchecked.
        problems: list[str | None] = [UNCHECKED] * len(received)
        arrived = Received(received, payload_bytes, problems, _key_windows(peer_keys))
        cursor = state.cursor  # the batches' sequence numbers count from here
        refetches = REFETCH_MAX

        def check(start: int, size: int) -> None:
            nonlocal refetches
            _check(peer, arrived, start, size, cursor, peer_keys, listed)
            for index in range(start, min(start + size, len(received))):
                if refetches > 0 and IN_TRANSIT in (arrived.problems[index] or ""):
                    refetches -= 1
                    if _fetch_again(client, peer, arrived, index, cursor):
                        _check(peer, arrived, index, 1, cursor, peer_keys, listed)

        result = _apply_received(session, peer, state, checkpoint, arrived, relay, check)
        result.stale = state.stale_reason
        return result
    finally:
        gc.unfreeze()


def _key_windows(peer_keys: dict[str, PeerKey]) -> set[tuple[Any, ...]]:
    return {
        (
            k.key_id,
            k.valid_from,
            k.valid_until,
            k.valid_from_seq,
            k.valid_until_seq,
            k.revoked_at,
            k.revoked_seq,
            k.awaiting_confirmation,
        )
        for k in peer_keys.values()
    }


def _recheck_keys(session: Session, peer: Peer, arrived: Received, start: int, size: int) -> None:
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
    if _key_windows(current) == arrived.keys:
        return
    for index in range(start, min(start + size, len(arrived.entries))):
        item = arrived.entries[index]
        if arrived.problems[index] is None and not isinstance(item, tuple) and not is_marker(item):
            payload = item["payload"]
            arrived.problems[index] = key_problem(
                current, item["key"], parse_time(payload["time"]), payload["seq"]
            )


def _receive(
    client: httpx.Client, peer: Peer, cursor: int, size: int
) -> tuple[list[Any], list[bytes | None]]:
    """The entries after `cursor` up to `size`, each with its payload's canonical bytes (its
    Merkle leaf and what its key signed; None for an entry that could not be read)."""
    received: list[Any] = []
    payload_bytes: list[bytes | None] = []
    for page in pages(client, peer, cursor, size):
        received += page
        payload_bytes += [
            None if isinstance(item, tuple) or is_marker(item) else canonical_payload(item)
            for item in page
        ]
    return received, payload_bytes


def _leaf(item: Any, data: bytes | None) -> bytes | None:
    """An entry's Merkle leaf: the hash of its payload's canonical bytes, or the leaf a
    purged v1 entry's marker gives (the checkpoint's signed root vouches for it)."""
    if data is not None:
        return leaf_hash(data)
    return bytes.fromhex(item["leaf"]) if is_marker(item) else None


def _check(
    peer: Peer,
    arrived: Received,
    start: int,
    size: int,
    cursor: int,
    peer_keys: dict[str, PeerKey],
    listed: dict[str, dict[str, PeerKey]],
) -> None:
    """Why each entry of a batch cannot be accepted (None: it can), into `arrived.problems`."""
    for index in range(start, min(start + size, len(arrived.entries))):
        item, data = arrived.entries[index], arrived.payload_bytes[index]
        seq = cursor + index + 1
        if isinstance(item, tuple):
            arrived.problems[index] = f"unreadable entry: {item[2]}"
        elif is_marker(item) or is_withheld(item):
            arrived.problems[index] = None  # purged, withheld: its leaf counts, no more
        elif peer.kind == PEER_HUB:
            arrived.problems[index] = relay_problem(
                item,
                origin=peer.origin,
                expected_seq=seq,
                peer_keys=peer_keys,
                listed=listed,
                payload_bytes=data,
            )
        else:
            arrived.problems[index] = entry_problem(
                item, origin=peer.origin, expected_seq=seq, peer_keys=peer_keys, payload_bytes=data
            )


def _fetch_again(
    client: httpx.Client, peer: Peer, arrived: Received, index: int, cursor: int
) -> bool:
    """Fetch the entry at `index` once more, alone; taken (True) only if its payload comes back
    the same: the bytes whose leaf the checkpoint's root covers."""
    seq = cursor + index + 1
    try:
        page = next(pages(client, peer, seq - 1, seq), [])
    except (SyncError, httpx.HTTPError):
        return False  # refused as it first came
    item = page[0] if page else None
    if not isinstance(item, dict) or canonical_payload(item) != arrived.payload_bytes[index]:
        return False
    arrived.entries[index].clear()  # in place: the batch being checked holds this dict
    arrived.entries[index].update(item)
    return True


def _record_id(item: Any) -> str | None:
    payload = item.get("payload") if isinstance(item, dict) else None
    rid = payload.get("id") if isinstance(payload, dict) else None
    return rid if isinstance(rid, str) else None


def _apply_received(
    session: Session,
    peer: Peer,
    state: PeerSync,
    checkpoint: dict[str, Any],
    arrived: Received,
    relay: Relay | None,
    check: Callable[[int, int], None],
) -> Round:
    """Check the received entries against the checkpoint's Merkle root, then check each batch
    (`check(start, size)` fills `arrived.problems`) and apply it, committed with the cursor and the
    frontier."""
    received, payload_bytes, problems = arrived.entries, arrived.payload_bytes, arrived.problems
    leaves = [_leaf(item, data) for item, data in zip(received, payload_bytes, strict=True)]
    frontier = load_frontier(state.frontier) if state.frontier is not None else None
    complete = state.cursor + len(received) == checkpoint["size"]
    if frontier is not None and None not in leaves and complete:
        if frontier_root(extend(frontier, leaves)).hex() != checkpoint["root"]:  # type: ignore[arg-type]
            raise SyncError(
                "the checkpoint's Merkle root does not match the entries received:"
                " history was rewritten"
            )
    result = Round()
    waiting: tuple[int, str | None, str] | None = None
    for start in range(0, len(received), COMMIT_EVERY):
        batch = received[start : start + COMMIT_EVERY]
        check(start, len(batch))
        waiting = _awaiting_confirmation(arrived, start, len(batch), state.cursor)
        if waiting is not None:  # the feed stops before it, to be taken up once confirmed
            batch = batch[: waiting[0] - state.cursor - 1]
        # What each accepted entry stores (a hub's entry carries the origin's envelope; a v2
        # body travels beside), made before the batch's transaction begins. A purged entry
        # (its origin's redaction came after it) is passed: nothing of it is stored.
        accepted: list[tuple[dict[str, Any], bytes | None, str | None] | None] = []
        for offset, item in enumerate(batch):
            if problems[start + offset] is not None or is_purged(item) or is_withheld(item):
                accepted.append(None)
            elif peer.kind == PEER_HUB:
                inner = item["payload"]["envelope"]
                accepted.append((inner, None, body_text(item["payload"], item.get("body"))))
            else:
                envelope = envelope_part(item)
                body = body_text(item["payload"], item.get("body"))
                accepted.append((envelope, payload_bytes[start + offset], body))
        staged: list[dict[str, Any] | None] = []
        envelopes: list[bytes | None] = []  # the canonical envelopes, relayed as they are
        for entry in accepted:
            envelope = envelope_bytes(entry[0], entry[1]) if entry is not None else None
            staged.append(
                stage(entry[0], entry[1], envelope, body=entry[2], relayed=relay is not None)
                if entry is not None
                else None
            )
            envelopes.append(envelope)
        writes = Writes(session, [rid for rid in map(_record_id, batch) if rid])
        _recheck_keys(session, peer, arrived, start, len(batch))
        relayed: list[tuple[dict[str, Any], bytes, str | None]] = []
        relayed_rows: list[dict[str, Any] | None] = []

        for offset, item in enumerate(batch):
            seq = state.cursor + offset + 1
            problem, row, entry = problems[start + offset], staged[offset], accepted[offset]
            encoded = envelopes[offset]
            if problem is None and (is_purged(item) or is_withheld(item)):
                result.withheld += is_withheld(item)
                result.redacted += not is_withheld(item)
                continue
            if problem is not None or row is None or entry is None or encoded is None:
                outcome, record = f"refused: {problem}", None
            elif entry[0]["payload"]["op"] == "redact":
                _write(session, relay, writes, relayed, relayed_rows)  # purged too
                redact_records(session, entry[0]["payload"])
                result.redactions += 1
                if relay is not None:
                    relayed.append((entry[0], encoded, entry[2]))
                    relayed_rows.append(None)
                continue
            else:
                outcome, record = apply(writes, row)
            if record is not None and entry is not None and encoded is not None:
                result.applied += 1
                if relay is not None:
                    relayed.append((entry[0], encoded, entry[2]))
                    relayed_rows.append(record)
            elif outcome == "unchanged":
                result.unchanged += 1
            else:
                rid = None if isinstance(item, tuple) else _record_id(item)
                refuse(session, peer, seq, rid, outcome.removeprefix("refused: "))
                result.refused += 1
        _write(session, relay, writes, relayed, relayed_rows)
        batch_leaves = leaves[start : start + len(batch)]
        if frontier is not None and None not in batch_leaves:
            frontier = extend(frontier, batch_leaves)  # type: ignore[arg-type]
        else:
            frontier = None  # an unreadable entry puts the root beyond reach from now on
        state.cursor += len(batch)
        state.frontier = None if frontier is None else dump_frontier(frontier)
        if waiting is not None:
            _refuse_once(session, peer, *waiting)
            result.refused += 1
        session.commit()
        if waiting is not None:
            return result
    if complete:
        state.checkpoint_size = checkpoint["size"]
        if frontier is not None:
            state.checkpoint_root = checkpoint["root"]
    session.flush()
    return result


def _write(
    session: Session,
    relay: Relay | None,
    writes: Writes,
    relayed: list[tuple[dict[str, Any], bytes, str | None]],
    rows: list[dict[str, Any] | None],
) -> None:
    """What a batch applied so far: relayed (a hub keeps the envelope once, in the relay
    entry) and stored."""
    if relay is not None:
        seqs = feed.relay_many(session, relay.key, origin=relay.origin, envelopes=relayed)
        for stored, relay_seq in zip(rows, seqs, strict=True):
            if stored is not None:
                stored["relay_seq"] = relay_seq
    writes.write(session)
    relayed.clear()
    rows.clear()


def _awaiting_confirmation(
    arrived: Received, start: int, size: int, cursor: int
) -> tuple[int, str | None, str] | None:
    """The first entry of a batch signed by a rotated key the operator has yet to confirm
    (its seq, record id and reason), or None. The cursor never passes it: once the key is
    confirmed, the next round takes the feed up from there."""
    for index in range(start, min(start + size, len(arrived.entries))):
        problem = arrived.problems[index]
        if isinstance(problem, AwaitingConfirmation):
            seq = cursor + index - start + 1
            return seq, _record_id(arrived.entries[index]), f"{problem}; the feed waits here"
    return None


def _refuse_once(session: Session, peer: Peer, seq: int, rid: str | None, reason: str) -> None:
    """A refusal kept once however many rounds meet the same waiting entry."""
    known = session.scalar(
        select(SyncRefusal.id).where(
            SyncRefusal.peer_id == peer.id, SyncRefusal.seq == seq, SyncRefusal.reason == reason
        )
    )
    if known is None:
        refuse(session, peer, seq, rid, reason)


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
        .where(Peer.active, Peer.kind.not_in(NOT_PULLED))
    )
    return [
        peer
        for peer, state in rows
        if state is None or state.next_attempt_at is None or state.next_attempt_at <= now
    ]


def record_failure(session: Session, peer: Peer, error: str) -> None:
    state = session.get(PeerSync, peer.id)
    if state is None:  # the peer failed before its first round got as far as a checkpoint
        state = PeerSync(peer_id=peer.id, cursor=0, checkpoint_size=0, failures=0)
        session.add(state)
    now = utcnow()
    state.failures = (state.failures or 0) + 1
    state.last_attempt_at, state.last_error = now, error[:2000]
    state.next_attempt_at = now + backoff(state.failures)
    state.running_since = None
    refuse(session, peer, None, None, error)


def record_success(session: Session, peer: Peer, interval: timedelta) -> None:
    state = session.get(PeerSync, peer.id)
    assert state is not None
    now = utcnow()
    state.failures, state.last_error, state.running_since = 0, None, None
    state.last_attempt_at = state.last_success_at = now
    state.next_attempt_at = now + interval


@dataclass(frozen=True)
class Job:
    """What a process needs to sync peers in a round."""

    database_url: str
    interval: timedelta
    timeout: float
    settings: Settings | None


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
        return sync_under_lease(job, sessions, engine, client, peer_id)


def sync_under_lease(
    job: Job,
    sessions: Callable[[], Session],
    engine: Engine,
    client: httpx.Client,
    peer_id: int,
) -> Round | str | None:
    """One peer's job under its lease; None when another process holds it."""
    with lease(engine, peer_id) as mine:
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
        return sync_and_record(sessions, engine, peer_id, client, job.interval, job.settings)


def sync_and_record(
    sessions: Callable[[], Session],
    engine: Engine,
    peer_id: int,
    client: httpx.Client,
    interval: timedelta,
    settings: Settings | None,
) -> Round | str:
    """Sync one peer within the job's time limit and record the outcome on its status: the
    next attempt after `interval`, or after a backoff with the error. Returns the round, or
    the error."""
    # One connection for the whole job, each batch's transaction begun and committed on it (no
    # transaction open between them): not a connection opened and closed for each batch.
    with engine.connect() as connection, Session(bind=connection) as session:
        peer = session.get(Peer, peer_id)
        assert peer is not None
        token = job_deadline.set(time.monotonic() + JOB_TIMEOUT.total_seconds())
        limits = job_limits.set(Limits.of(settings))
        signer = job_signer.set(signer_for(session, settings))
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
            job_deadline.reset(token)
            job_limits.reset(limits)
            job_signer.reset(signer)
    with sessions() as session:
        peer = session.get(Peer, peer_id)
        assert peer is not None
        record_failure(session, peer, error)
        session.commit()
    return error
