"""The operator's trust actions: this node's signing keys, and the peers it trusts.

A node makes its signing key, and rotates it with a statement signed by the old key and the
new one. A hub enrols nodes under keys exchanged out of band, and revokes a key from a given
time; a node mirrors a hub the same way (a peer of kind "hub"). Each action adds its audit
entry to the caller's transaction; the caller commits.
"""

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from federation import feed, keys
from federation.canonical import canonical
from federation.models import SINCE_EVER, NodeKey, Peer, PeerKey
from node.core import audit
from node.core.auth import Principal
from node.core.db import utcnow
from node.core.errors import AppError, Conflict, NotFound
from node.core.settings import Settings

NO_KEY_YET = "no signing key yet: run `integra keys init`"


class SigningKeyInfo(NamedTuple):
    key_id: str
    public_key: str
    state: str  # "active" or "retired"


class PeerKeyText(NamedTuple):
    """A peer's public key as given (base64url), with the id derived from it."""

    key_id: str
    public_key: str


async def create_signing_key(
    session: AsyncSession, settings: Settings, *, by: Principal
) -> tuple[str, str, bool]:
    """The active signing key (id, public key), made first if there is none: (…, created)."""
    current = await session.scalar(select(NodeKey).where(NodeKey.retired_at.is_(None)))
    if current is not None:
        return current.key_id, current.public_key, False
    key = keys.generate()
    keys.save(key, feed.key_path(settings, key.key_id))
    session.add(NodeKey(key_id=key.key_id, public_key=key.public_b64))
    audit.record(session, by, action="key_create", entity_type="node_key", entity_id=key.key_id)
    return key.key_id, key.public_b64, True


async def signing_keys(session: AsyncSession) -> list[SigningKeyInfo]:
    """Every key this node has had, newest first."""
    rows = await session.scalars(select(NodeKey).order_by(NodeKey.created_at.desc()))
    return [
        SigningKeyInfo(k.key_id, k.public_key, "retired" if k.retired_at else "active")
        for k in rows
    ]


async def rotate_signing_key(
    session: AsyncSession, settings: Settings, *, by: Principal
) -> tuple[str, str]:
    """A new signing key (id, public key), announced by a statement that the old key and the
    new one both sign. The old key is retired: what it signed before now stays trusted."""
    current = await session.scalar(select(NodeKey).where(NodeKey.retired_at.is_(None)))
    if current is None:
        raise NotFound(NO_KEY_YET)
    old = keys.load(feed.key_path(settings, current.key_id))
    new = keys.generate()
    now = utcnow()
    statement = {
        "type": "key-rotation",
        "origin": settings.country,
        "previous": old.key_id,
        "key": new.key_id,
        "public_key": new.public_b64,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    signed = canonical(statement)
    announcement = {
        "statement": statement,
        "signatures": [
            {"key": old.key_id, "sig": old.sign(signed)},
            {"key": new.key_id, "sig": new.sign(signed)},
        ],
    }
    keys.save(new, feed.key_path(settings, new.key_id))
    current.retired_at = now
    session.add(
        NodeKey(
            key_id=new.key_id, public_key=new.public_b64, announcement=announcement, created_at=now
        )
    )
    audit.record(
        session,
        by,
        action="key_rotate",
        entity_type="node_key",
        entity_id=new.key_id,
        detail={"previous": old.key_id},
    )
    return new.key_id, new.public_b64


def parse_public_keys(texts: list[str]) -> list[PeerKeyText]:
    """Each text as a base64url Ed25519 public key; refuses the first that is not one."""
    parsed = []
    for text in texts:
        try:
            raw = keys.unb64(text.strip())
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise AppError(f"--key {text[:16]}…: not a base64url Ed25519 public key (32 bytes)")
        parsed.append(PeerKeyText(keys.key_id_of(raw), text.strip()))
    return parsed


async def enrol_peer(
    session: AsyncSession,
    *,
    origin: str,
    url: str,
    public_keys: list[PeerKeyText],
    kind: str = "node",
    by: Principal,
) -> list[str]:
    """Trust the node (or, for a mirror, the hub) at `url` for `origin`'s records under these
    keys; returns the key ids. Repeating it changes nothing but the URL."""
    peer = await session.scalar(select(Peer).where(Peer.origin == origin))
    if peer is None:
        peer = Peer(origin=origin, kind=kind, base_url=url.rstrip("/"))
        session.add(peer)
        await session.flush()
    if peer.kind != kind:
        what = {"node": "an enrolled node", "hub": "a mirrored hub", "listed": "a node"}
        raise Conflict(
            f"{origin} is already known here as {what.get(peer.kind, peer.kind)}"
            + (" listed by the mirrored hub" if peer.kind == "listed" else "")
        )
    peer.base_url = url.rstrip("/")
    for key_id, public in public_keys:
        if await session.get(PeerKey, key_id) is None:
            # Trusted for all it signed, also before enrolment: a node's feed has a past.
            session.add(
                PeerKey(key_id=key_id, peer_id=peer.id, public_key=public, valid_from=SINCE_EVER)
            )
    audit.record(
        session,
        by,
        action="enrol",
        entity_type="peer",
        entity_id=origin,
        detail={"url": url, "keys": [k.key_id for k in public_keys]},
    )
    return [k.key_id for k in public_keys]


async def revoke_peer_key(
    session: AsyncSession, *, key_id: str, at: datetime, by: Principal
) -> None:
    """What the key signed before `at` stays trusted; anything later is refused."""
    key = await session.get(PeerKey, key_id)
    if key is None:
        raise NotFound(f"no enrolled key {key_id}")
    key.revoked_at = at
    audit.record(
        session,
        by,
        action="revoke",
        entity_type="peer_key",
        entity_id=key_id,
        detail={"at": at.isoformat()},
    )
