"""The EU pool's record page (on the hub, and on a node that mirrors it): what the origin
shared, and "verify this record": each signature of its chain checked here, with the keys
this program trusts, by the same functions as `integra verify` (federation/verify.py).

A hub's record is the hub's relay entry carrying the origin's envelope: two links, the hub's
signature over its relay and the origin's over its entry. A mirror keeps the origin's
envelope: one link. The body is checked against the hash the payload signs (feed v2)."""

import json
import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from federation import repository as federation
from federation.models import PEER_HUB, FederatedRecord, Peer, PeerKey
from federation.pool import pool_record
from federation.verify import KnownKey, Link, body_check, known_keys, verify_chain
from node.core.deps import SessionDep
from node.core.errors import NotFound
from node.web.deps import WebPrincipal
from node.web.render import page

router = APIRouter()
RECORD_ID = re.compile(r"^[A-Z]{2}:[0-9A-Za-z-]{1,77}$")


@dataclass(frozen=True)
class Signature:
    """One link of the chain as the page shows it."""

    link: Link
    seq: int | None
    version: int | None
    op: str | None
    relay: bool  # the hub's signature over its relay entry (else: the origin's over its entry)


async def mirrored_hubs(session: AsyncSession) -> list[str]:
    """The hubs this node mirrors (federation peers of kind `hub`, active): with one, the
    search page offers the EU-wide pool."""
    rows = await session.scalars(
        select(Peer.origin).where(Peer.kind == PEER_HUB, Peer.active.is_(True))
    )
    return list(rows)


async def trusted_keys(session: AsyncSession, own_origin: str | None) -> dict[str, KnownKey]:
    """Every key this program trusts, with its window: its own (with their rotations, as
    `/federation/v1/keys` gives them) and its peers' (enrolled, mirrored, listed)."""
    own = await federation.node_keys(session)
    known: dict[str, KnownKey] = {}
    if own_origin and own:
        document = {
            "origin": own_origin,
            "keys": [
                {"key_id": k.key_id, "public_key": k.public_key, "announcement": k.announcement}
                for k in own
            ],
        }
        known = known_keys([document])
    rows = await session.execute(
        select(PeerKey, Peer.origin).join(Peer, Peer.id == PeerKey.peer_id)
    )
    for key, origin in rows:
        if key.awaiting_confirmation:
            continue
        revoked = key.revoked_seq
        if revoked is None and key.revoked_at is not None:
            revoked = 0
        known[key.key_id] = KnownKey(
            origin, key.public_key, key.valid_from_seq, key.valid_until_seq, revoked
        )
    return known


def chain_of(record: FederatedRecord) -> dict[str, Any]:
    """The outermost signed envelope held for the record (the hub's relay entry, or the
    origin's envelope as a mirror keeps it), with its body beside it (v2)."""
    if record.relay is not None and record.relay.payload:
        envelope: dict[str, Any] = {
            "payload": json.loads(record.relay.payload),
            "key": record.relay.key_id,
            "sig": record.relay.signature,
        }
    else:
        envelope = json.loads(record.signed_envelope)
    payload = envelope.get("payload")
    if isinstance(payload, dict) and "v" in payload:
        envelope["body"] = record.body
        if record.redacted:
            envelope["redacted"] = json.loads(record.redacted)
    return envelope


def signatures(envelope: dict[str, Any], known: dict[str, KnownKey]) -> list[Signature]:
    if "payload" not in envelope:  # a purged v1 record keeps only its redaction marker
        return []
    links = verify_chain(envelope, known)
    out = []
    current: Any = envelope
    for position, link in enumerate(links):
        payload = current.get("payload") if isinstance(current, dict) else None
        payload = payload if isinstance(payload, dict) else {}
        seq, version = payload.get("seq"), payload.get("version")
        out.append(
            Signature(
                link,
                seq if type(seq) is int else None,
                version if type(version) is int else None,
                str(payload["op"]) if "op" in payload else None,
                position < len(links) - 1,
            )
        )
        current = payload.get("envelope")
    return out


@router.get("/eu/records/{record_id}", response_class=HTMLResponse)
async def pool_record_page(
    record_id: str, request: Request, session: SessionDep, by: WebPrincipal
) -> HTMLResponse:
    found = RECORD_ID.match(record_id)
    # A record of scope `network` is not there for a reader who is not signed in.
    record = await pool_record(session, record_id, signed_in=by.is_signed_in) if found else None
    if record is None:
        raise NotFound(f"No record {record_id[:80]} in the EU pool here.")
    settings = request.app.state.settings
    envelope = chain_of(record)
    links = signatures(envelope, await trusted_keys(session, settings.country))
    body_ok = body_check(envelope) if "payload" in envelope else None
    # "none": nothing signed is kept (a v1 record whose body a redaction purged).
    verified = (
        "none"
        if not links
        else "valid"
        if all(s.link.valid for s in links) and (body_ok is None or body_ok[0])
        else "invalid"
    )
    context = {
        "r": record,
        "b": record.body or {},
        "links": links,
        "body_ok": body_ok,
        "verified": verified,
        "redacted": json.loads(record.redacted) if record.redacted else None,
    }
    return page(request, "eu/record.html", context)
