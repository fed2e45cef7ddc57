"""The operator's trust actions: this node's signing keys, and the peers it trusts.

A node makes its signing key, and rotates it with a statement signed by the old key and the
new one, naming the last entry the old key signed. A hub enrols nodes under keys exchanged out
of band, confirms the keys their rotations announce, and revokes a key at what it had accepted
of the node's feed (never at a time the signer writes), with every key that key introduced; a
node mirrors a hub the same way (a peer of kind "hub"). Each action adds its audit entry to the
caller's transaction; the caller commits.
"""

from typing import NamedTuple

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from federation import feed, keys
from federation.canonical import canonical
from federation.models import (
    PEER_HUB,
    PEER_LISTED,
    PEER_READER,
    FederatedRecord,
    FeedEntry,
    NodeKey,
    Peer,
    PeerKey,
    PeerSync,
)
from federation.sync.client import Limits, SyncError, fetch_json, peer_url_problem
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


class PeerKeyInfo(NamedTuple):
    """A key a peer signs with, as the operator reviews it."""

    origin: str
    key_id: str
    state: str  # "trusted", "awaiting confirmation" or "revoked at seq N"
    introduced_by: str | None


class Revoked(NamedTuple):
    """A key revoked: entries it signed after `seq` are refused (`size`: the peer's checkpoint
    size then)."""

    key_id: str
    seq: int
    size: int


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
    # No entry is appended meanwhile: the old key signs up to `seq`, the new one after it.
    await session.run_sync(feed._lock_feed)
    last = await session.scalar(select(func.coalesce(func.max(FeedEntry.seq), 0)))
    statement = {
        "type": "key-rotation",
        "origin": settings.country,
        "previous": old.key_id,
        "key": new.key_id,
        "public_key": new.public_b64,
        "seq": int(last or 0),
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
    """Each text as a base64url Ed25519 public key; refuses the first that is not one, or is
    a weak key (small order, non-canonical: `keys.public_key_raw`), saying why."""
    parsed = []
    for text in texts:
        try:
            raw = keys.public_key_raw(text.strip())
        except ValueError as error:
            raise AppError(
                f"--key {text[:16]}…: not a usable Ed25519 public key, {error}"
            ) from None
        parsed.append(PeerKeyText(keys.key_id_of(raw), text.strip()))
    return parsed


async def _seen(session: AsyncSession, peer: Peer) -> tuple[int, int]:
    """What this program has accepted of the feed a peer's keys sign: (last seq, checkpoint
    size). For a node listed by a mirrored hub, the last of its entries the hub relayed here."""
    if peer.kind == PEER_LISTED:
        last = await session.scalar(
            select(func.coalesce(func.max(FederatedRecord.origin_seq), 0)).where(
                FederatedRecord.origin == peer.origin
            )
        )
        return int(last or 0), int(last or 0)
    state = await session.get(PeerSync, peer.id)
    return (state.cursor, state.checkpoint_size) if state is not None else (0, 0)


async def enrol_peer(
    session: AsyncSession,
    *,
    origin: str,
    url: str,
    public_keys: list[PeerKeyText],
    kind: str = "node",
    auto_rotate: bool | None = None,
    allow_insecure: bool = False,
    by: Principal,
) -> list[str]:
    """Trust the node (or, for a mirror, the hub) at `url` for `origin`'s records under these
    keys; returns the key ids. Repeating it changes nothing but the URL (and, if given, whether
    the node's key rotations are trusted without the operator's confirmation). The URL is
    https:// (plain http:// only on a loopback address, unless `allow_insecure`)."""
    problem = peer_url_problem(url, allow_insecure=allow_insecure)
    if problem:
        raise AppError(problem)
    peer = await session.scalar(select(Peer).where(Peer.origin == origin))
    if peer is None:
        peer = Peer(origin=origin, kind=kind, base_url=url.rstrip("/"), auto_rotate=False)
        session.add(peer)
        await session.flush()
    # A hub trusted to read this node's `network` entries becomes a mirrored one when the node
    # mirrors it; a mirrored hub is trusted to read them already.
    if (peer.kind, kind) == (PEER_READER, PEER_HUB):
        peer.kind = PEER_HUB
    if (peer.kind, kind) == (PEER_HUB, PEER_READER):
        kind = PEER_HUB
    if peer.kind != kind:
        what = {
            "node": "an enrolled node",
            "hub": "a mirrored hub",
            "listed": "a node",
            "reader": "a hub trusted to read this node's feed",
        }
        raise Conflict(
            f"{origin} is already known here as {what.get(peer.kind, peer.kind)}"
            + (" listed by the mirrored hub" if peer.kind == "listed" else "")
        )
    peer.base_url = url.rstrip("/")
    if auto_rotate is not None:
        peer.auto_rotate = auto_rotate
    seen, _ = await _seen(session, peer)
    for key_id, public in public_keys:
        if await session.get(PeerKey, key_id) is None:
            # Valid from enrolment: for every entry after those accepted so far (a new peer's
            # whole feed, its past included), whatever time the entries claim.
            session.add(
                PeerKey(key_id=key_id, peer_id=peer.id, public_key=public, valid_from_seq=seen + 1)
            )
    audit.record(
        session,
        by,
        action="enrol",
        entity_type="peer",
        entity_id=origin,
        detail={"url": url, "keys": [k.key_id for k in public_keys], "auto_rotate": auto_rotate},
    )
    return [k.key_id for k in public_keys]


def hub_key_at(url: str, fingerprint: str, *, allow_insecure: bool) -> tuple[str, PeerKeyText]:
    """The hub at `url` (its origin) and its key whose fingerprint is the one its operator
    gave out of band, from the keys it publishes (`/federation/v1/keys`). Raises AppError."""
    problem = peer_url_problem(url, allow_insecure=allow_insecure)
    if problem:
        raise AppError(problem)
    base = url.rstrip("/")
    limits = Limits(allow_insecure=allow_insecure, deadline=30.0)
    try:
        with httpx.Client(timeout=httpx.Timeout(15.0, connect=5.0)) as client:
            document = fetch_json(client, f"{base}/federation/v1/keys", limits=limits)
    except (SyncError, httpx.HTTPError, ValueError) as exc:
        raise AppError(f"{base} did not give its keys: {exc}") from None
    origin = document.get("origin") if isinstance(document, dict) else None
    rows = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(origin, str) or len(origin) != 2 or not isinstance(rows, list):
        raise AppError(f"{base}/federation/v1/keys is not a feed's list of keys")
    wanted = "".join(fingerprint.split()).lower()
    for row in rows:
        public = row.get("public_key") if isinstance(row, dict) else None
        if not isinstance(public, str):
            continue
        [key] = parse_public_keys([public])
        if "".join(keys.fingerprint(key.key_id).split()) == wanted:
            return origin, key
    raise AppError(
        f"no key of {base} has the fingerprint given: compare it with the hub operator's again"
    )


async def trust_hub(
    session: AsyncSession, *, origin: str, url: str, key: PeerKeyText, by: Principal
) -> str:
    """Let the hub at `url` read this node's `network` entries (its requests signed with this
    key), without mirroring it; returns the key id. A node that mirrors the hub trusts it
    already (`integra mirror add`)."""
    [key_id] = await enrol_peer(
        session,
        origin=origin,
        url=url,
        public_keys=[key],
        kind=PEER_READER,
        allow_insecure=True,  # checked by `hub_key_at`, with the operator's setting
        by=by,
    )
    return key_id


async def peer_keys(session: AsyncSession) -> list[PeerKeyInfo]:
    """Every key of every peer, by origin: trusted, awaiting confirmation or revoked."""
    rows = await session.execute(
        select(Peer.origin, PeerKey).join(Peer, Peer.id == PeerKey.peer_id).order_by(Peer.origin)
    )
    listed = []
    for origin, key in rows.tuples():
        if key.revoked_seq is not None or key.revoked_at is not None:
            state = f"revoked at seq {key.revoked_seq or 0}"
        elif key.awaiting_confirmation:
            state = "awaiting confirmation"
        else:
            state = "trusted"
        listed.append(PeerKeyInfo(origin, key.key_id, state, key.introduced_by))
    return listed


async def revoke_peer_key(session: AsyncSession, *, key_id: str, by: Principal) -> list[Revoked]:
    """Refuse every entry the key signs after what this program had accepted of its peer's
    feed (the cursor, and the checkpoint size, now), whatever time the entry claims; the keys
    it introduced by rotation, and theirs, fall at the same bound. A key revoked already keeps
    its earlier bound. Returns the keys revoked, the one named first."""
    key = await session.get(PeerKey, key_id)
    if key is None:
        raise NotFound(f"no enrolled key {key_id}")
    peer = await session.get(Peer, key.peer_id)
    assert peer is not None
    seen, size = await _seen(session, peer)
    revoked: list[Revoked] = []
    todo = [key]
    while todo:
        current = todo.pop(0)
        bound = current.revoked_seq
        if bound is None or bound > seen:
            bound = current.revoked_seq = seen
            current.revoked_size = size
            current.revoked_at = current.revoked_at or utcnow()
        revoked.append(Revoked(current.key_id, bound, current.revoked_size or 0))
        audit.record(
            session,
            by,
            action="revoke",
            entity_type="peer_key",
            entity_id=current.key_id,
            detail={
                "seq": current.revoked_seq,
                "checkpoint_size": current.revoked_size,
                "introduced_by": current.introduced_by if current is not key else None,
            },
        )
        known = {r.key_id for r in revoked} | {k.key_id for k in todo}
        todo += [
            k
            for k in await session.scalars(
                select(PeerKey).where(PeerKey.introduced_by == current.key_id)
            )
            if k.key_id not in known
        ]
    return revoked


async def confirm_peer_key(
    session: AsyncSession, *, key_id: str, fingerprint: str, by: Principal
) -> str:
    """Trust a rotated key the operator compared with the node operator's fingerprint; its
    peer is synced at the next round, from the first entry that waited for it. Returns the
    peer's origin."""
    key = await session.get(PeerKey, key_id)
    if key is None:
        raise NotFound(f"no key {key_id} known here")
    if not key.awaiting_confirmation:
        raise Conflict(f"key {key_id} awaits no confirmation")
    if key.revoked_seq is not None or key.revoked_at is not None:
        raise Conflict(f"key {key_id} is revoked")
    try:  # a rotation taken in before weak keys were refused
        keys.public_key_raw(key.public_key)
    except ValueError as error:
        raise Conflict(f"key {key_id} is not a usable Ed25519 public key, {error}") from None
    expected = keys.fingerprint(key_id)
    if "".join(fingerprint.split()).lower() != "".join(expected.split()).lower():
        raise AppError(
            f"the fingerprint given is not that of key {key_id}: compare it with the node"
            " operator's again"
        )
    key.awaiting_confirmation = False
    await session.execute(
        update(PeerSync).where(PeerSync.peer_id == key.peer_id).values(next_attempt_at=None)
    )
    peer = await session.get(Peer, key.peer_id)
    assert peer is not None
    audit.record(
        session,
        by,
        action="key_confirm",
        entity_type="peer_key",
        entity_id=key_id,
        detail={"origin": peer.origin, "introduced_by": key.introduced_by},
    )
    return peer.origin
