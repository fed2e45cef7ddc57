"""The keys a round trusts beyond those enrolled here: the hub's signed directory of the nodes
it enrols (published by the hub, read by a mirror to check the origin's signature inside every
relayed entry, and the revocations a mirror applies) and a node's key rotations (signed by its
old key and its new one, refused when the old key is revoked, held for the operator's
confirmation unless the node's enrolment allows automatic rotation).

Every bound is a sequence number of the feed the key signs: the time an announcement or an entry
claims never widens what is trusted."""

from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from federation import keys
from federation.canonical import canonical
from federation.models import PEER_LISTED, PEER_NODE, Peer, PeerKey, PeerSync
from federation.sync.checks import TIME_FORMAT, key_problem, parse_time, revocation_bound
from federation.sync.client import SyncError, fetch_json, verify_signed
from federation.sync.store import Relay, refuse
from node.core.db import utcnow
from node.core.models import AuditEntry


def _stamp(moment: datetime | None) -> str | None:
    return moment.strftime(TIME_FORMAT) if moment else None


def directory_key(key: PeerKey) -> dict[str, Any]:
    """A key as the directory lists it: its window and its revocation, in the origin's seqs."""
    return {
        "key_id": key.key_id,
        "public_key": key.public_key,
        "valid_from": _stamp(key.valid_from),
        "valid_until": _stamp(key.valid_until),
        "valid_from_seq": key.valid_from_seq,
        "valid_until_seq": key.valid_until_seq,
        "revoked_at": _stamp(key.revoked_at),
        "revoked_seq": revocation_bound(key),
        "revoked_size": key.revoked_size,
    }


def signed_directory(session: Session, hub: Relay) -> dict[str, Any]:
    """The hub's signed list of the nodes it enrols and their keys (a rotation awaiting the
    operator's confirmation left out), with each key's window and revocation, so a mirror can
    check the origin's signature inside every relayed entry."""
    nodes = []
    for peer in session.scalars(
        select(Peer).where(Peer.kind == PEER_NODE, Peer.active).order_by(Peer.origin)
    ):
        peer_keys = session.scalars(
            select(PeerKey)
            .where(PeerKey.peer_id == peer.id, PeerKey.awaiting_confirmation.is_(False))
            .order_by(PeerKey.key_id)
        )
        nodes.append({"origin": peer.origin, "keys": [directory_key(k) for k in peer_keys]})
    body = {"origin": hub.origin, "nodes": nodes, "time": _stamp(utcnow())}
    return {"directory": body, "key": hub.key.key_id, "sig": hub.key.sign(canonical(body))}


def _seq(entry: dict[str, Any], name: str, key_id: str) -> int | None:
    value = entry.get(name)
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise SyncError(f"the directory's {name} of key {key_id} is not a sequence number")
    return value


def _apply_listing(key: PeerKey, entry: dict[str, Any]) -> None:
    """The directory's window and revocation of a listed key. A revocation stays: a later
    directory may narrow its bound, never lift it."""
    key.valid_from = parse_time(entry.get("valid_from"))
    key.valid_until = parse_time(entry.get("valid_until"))
    key.valid_from_seq = _seq(entry, "valid_from_seq", key.key_id)
    key.valid_until_seq = _seq(entry, "valid_until_seq", key.key_id)
    bound = _seq(entry, "revoked_seq", key.key_id)
    revoked_at = parse_time(entry.get("revoked_at"))
    if bound is None and revoked_at is None:
        return
    bound = 0 if bound is None else bound  # revoked with no bound: it signs nothing
    known = revocation_bound(key)
    key.revoked_seq = bound if known is None else min(known, bound)
    key.revoked_size = _seq(entry, "revoked_size", key.key_id)
    key.revoked_at = key.revoked_at or revoked_at or utcnow()


def listed_keys(
    session: Session, client: httpx.Client, hub: Peer, hub_keys: dict[str, PeerKey]
) -> dict[str, dict[str, PeerKey]]:
    """Fetch and verify the mirrored hub's directory; keep its nodes' keys as listed peers,
    with their windows and revocations."""
    body = verify_signed(
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
            _apply_listing(key, entry)
            listed[origin][key_id] = key
    session.flush()
    return listed


class Rotation:
    """A key-rotation announcement whose shape and both signatures check out."""

    def __init__(self, statement: dict[str, Any], previous: PeerKey, public: str) -> None:
        self.statement, self.previous, self.public = statement, previous, public
        self.key_id: str = statement["key"]
        self.time = parse_time(statement.get("time"))
        seq = statement.get("seq")
        # The last entry the previous key signed (a statement from before seqs: None).
        self.seq: int | None = seq if type(seq) is int and seq >= 0 else None


def _rotation(row: Any, peer: Peer, peer_keys: dict[str, PeerKey]) -> Rotation | None:
    """The row's announcement, if signed by a key trusted here and by the new key itself."""
    announcement = row.get("announcement") if isinstance(row, dict) else None
    if not isinstance(announcement, dict) or row.get("key_id") in peer_keys:
        return None
    statement = announcement.get("statement")
    signatures = announcement.get("signatures")
    if not isinstance(statement, dict) or not isinstance(signatures, list):
        return None
    previous = peer_keys.get(str(statement.get("previous")))
    new_id, public = statement.get("key"), str(statement.get("public_key", ""))
    try:
        derived = keys.key_id_of(keys.unb64(public))
    except ValueError:
        return None
    signed_by = {s.get("key"): str(s.get("sig")) for s in signatures if isinstance(s, dict)}
    statement_bytes = canonical(statement)
    if (
        statement.get("type") != "key-rotation"
        or statement.get("origin") != peer.origin
        or previous is None
        or derived != new_id
        or ("seq" in statement and (type(statement["seq"]) is not int or statement["seq"] < 0))
        or parse_time(statement.get("time")) is None
        or not keys.verify(previous.public_key, statement_bytes, signed_by.get(previous.key_id, ""))
        or not keys.verify(public, statement_bytes, signed_by.get(derived, ""))
    ):
        return None
    return Rotation(statement, previous, public)


def _refuse_rotation(session: Session, peer: Peer, rotation: Rotation, bound: int) -> None:
    """Kept once, with its reason: a revoked key announced a rotation."""
    reason = (
        f"key rotation to {rotation.key_id} refused: announced by key"
        f" {rotation.previous.key_id} after its revocation (at seq {bound})"
    )
    refused = select(AuditEntry.id).where(
        AuditEntry.action == "key_rotation_refused", AuditEntry.entity_id == rotation.key_id
    )
    if session.scalar(refused.limit(1)) is not None:
        return
    refuse(session, peer, None, None, reason)
    session.add(
        AuditEntry(
            actor="sync",
            action="key_rotation_refused",
            entity_type="peer_key",
            entity_id=rotation.key_id,
            detail={"origin": peer.origin, "previous": rotation.previous.key_id, "reason": reason},
        )
    )


def accept_rotations(
    session: Session, client: httpx.Client, peer: Peer, peer_keys: dict[str, PeerKey]
) -> list[str]:
    """Trust a node's new key when its rotation announcement is signed by a key trusted here
    (neither revoked nor itself awaiting confirmation) and by the new key itself: from the
    entry after the seq the announcement names, and the old key until then. Unless the node's
    enrolment allows automatic rotation, the new key waits for the operator's confirmation
    (`integra hub confirm-key`). Returns the keys taken in."""
    document = fetch_json(client, f"{peer.base_url}/federation/v1/keys")
    rows = document.get("keys") if isinstance(document, dict) else None
    state = session.get(PeerSync, peer.id)
    cursor = state.cursor if state is not None else 0  # what this hub has decided already
    accepted: list[str] = []
    for row in rows if isinstance(rows, list) else []:
        rotation = _rotation(row, peer, peer_keys)
        if rotation is None or session.get(PeerKey, rotation.key_id) is not None:
            continue
        previous, when = rotation.previous, rotation.time
        bound = revocation_bound(previous)
        if bound is not None:
            _refuse_rotation(session, peer, rotation, bound)
            continue
        if previous.awaiting_confirmation or key_problem(peer_keys, previous.key_id, when):
            continue  # not trusted yet (a chain of rotations waits for its first link)
        assert when is not None
        key = PeerKey(
            key_id=rotation.key_id,
            peer_id=peer.id,
            public_key=rotation.public,
            valid_from=when,
            introduced_by=previous.key_id,
            awaiting_confirmation=not peer.auto_rotate,
        )
        # Neither key's window reaches back over what this hub has decided already.
        if rotation.seq is None:
            key.valid_from_seq = cursor + 1
        else:
            key.valid_from_seq = max(rotation.seq, cursor) + 1
            last = key.valid_from_seq - 1
            if previous.valid_until_seq is None or previous.valid_until_seq > last:
                previous.valid_until_seq = last
        session.add(key)
        previous.valid_until = min(previous.valid_until or when, when)
        peer_keys[rotation.key_id] = key
        session.add(
            AuditEntry(
                actor="sync",
                action="key_rotation_held"
                if key.awaiting_confirmation
                else "key_rotation_accepted",
                entity_type="peer_key",
                entity_id=rotation.key_id,
                detail={"origin": peer.origin, "previous": previous.key_id},
            )
        )
        accepted.append(rotation.key_id)
    return accepted
