"""The keys a round trusts beyond those enrolled here: the hub's signed directory of the nodes
it enrols (published by the hub, read by a mirror to check the origin's signature inside every
relayed entry) and a node's key rotations (signed by its old key and its new one)."""

from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from federation import keys
from federation.canonical import canonical
from federation.models import PEER_LISTED, PEER_NODE, Peer, PeerKey
from federation.sync.checks import TIME_FORMAT, key_problem, parse_time
from federation.sync.client import SyncError, fetch_json, verify_signed
from federation.sync.store import Relay
from node.core.db import utcnow
from node.core.models import AuditEntry


def _stamp(moment: datetime | None) -> str | None:
    return moment.strftime(TIME_FORMAT) if moment else None


def signed_directory(session: Session, hub: Relay) -> dict[str, Any]:
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


def listed_keys(
    session: Session, client: httpx.Client, hub: Peer, hub_keys: dict[str, PeerKey]
) -> dict[str, dict[str, PeerKey]]:
    """Fetch and verify the mirrored hub's directory; keep its nodes' keys as listed peers."""
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
            key.valid_from = parse_time(entry.get("valid_from")) or utcnow()
            key.valid_until = parse_time(entry.get("valid_until"))
            key.revoked_at = parse_time(entry.get("revoked_at"))
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
        when = parse_time(statement.get("time"))
        try:
            derived = keys.key_id_of(keys.unb64(public))
        except ValueError:
            continue
        signed_by = {s.get("key"): str(s.get("sig")) for s in signatures if isinstance(s, dict)}
        statement_bytes = canonical(statement)
        if (
            statement.get("type") != "key-rotation"
            or statement.get("origin") != peer.origin
            or previous is None
            or derived != new_id
            or key_problem(peer_keys, previous.key_id, when) is not None
            or not keys.verify(
                previous.public_key, statement_bytes, signed_by.get(previous.key_id, "")
            )
            or not keys.verify(public, statement_bytes, signed_by.get(new_id, ""))
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
