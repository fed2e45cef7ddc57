"""The signed feed (`/federation/v1`) and the review queue of held records (`/api/v1`)."""

import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from federation import feed, hub
from federation.models import (
    PEER_HUB,
    PEER_LISTED,
    FederatedRecord,
    GateHold,
    NodeKey,
    Peer,
    PeerSync,
    SyncRefusal,
)
from node.core import audit, outbox
from node.core.auth import AdminUser, CurrentUser
from node.core.db import utcnow
from node.core.deps import SessionDep
from node.core.errors import AppError, Conflict, Forbidden, NotFound, responses
from practices.search.port import SearchQuery
from practices.search.text import query_terms, snippet
from practices.tasks import PRACTICE_CHANGED, STUDY_VISIT_CHANGED

feed_router = APIRouter(prefix="/federation/v1", tags=["federation"])
router = APIRouter(prefix="/api/v1/federation", tags=["federation"])


class NotConfigured(AppError):
    status_code = 503
    error = "Federation not configured"


def _settings(request: Request) -> Any:
    settings = request.app.state.settings
    if not settings.country:
        raise NotConfigured("This node has no INTEGRA_COUNTRY, so it publishes no feed.")
    return settings


class FeedPage(BaseModel):
    origin: str
    entries: list[dict[str, Any]] = Field(description="Envelopes {payload, key, sig}, by seq.")
    next_after: int | None = Field(description="Pass as `after` for the next page.")


@feed_router.get("/feed", response_model=FeedPage, responses=responses(NotConfigured))
async def get_feed(
    request: Request,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
) -> Response:
    """Entries after `after`, oldest first. Each is signed on its own over its canonical JSON."""
    settings = _settings(request)
    size = min(limit, settings.feed_page_max)

    entries = await session.run_sync(lambda sync: feed.page(sync, after=after, limit=size))
    last = entries[-1][0] if entries else None
    # Each payload goes out as the exact text that was signed, written into the page as it is
    # stored (a FeedPage, which the schema above documents), not parsed and written again.
    body = "".join(
        (
            '{"origin":',
            json.dumps(settings.country),
            ',"entries":[',
            ",".join(
                f'{{"payload":{payload},"key":{json.dumps(key)},"sig":{json.dumps(sig)}}}'
                for _, payload, key, sig in entries
            ),
            '],"next_after":',
            json.dumps(last if len(entries) == size else None),
            "}",
        )
    )
    return Response(body, media_type="application/json")


@feed_router.get("/checkpoint", responses=responses(NotConfigured))
async def get_checkpoint(request: Request, session: SessionDep) -> dict[str, Any]:
    """The feed's size and Merkle root (RFC 6962 leaf and node hashes), signed."""
    settings = _settings(request)

    def sign(sync: Session) -> dict[str, Any]:
        try:
            key = feed.active_key(sync, settings)
        except feed.FederationNotConfigured as exc:
            raise NotConfigured(str(exc)) from None
        return feed.checkpoint(sync, key, settings.country)

    return await session.run_sync(sign)


@feed_router.get("/directory", responses=responses(NotConfigured, NotFound))
async def get_directory(request: Request, session: SessionDep) -> dict[str, Any]:
    """(Hub) The nodes this hub enrols and their keys, signed by the hub: what a mirroring node
    needs to check the origin's signature inside every entry of the hub's feed."""
    settings = _settings(request)
    if settings.role != "hub":
        raise NotFound("Only a hub publishes a directory of nodes.")

    def sign(sync: Session) -> dict[str, Any]:
        relay = hub.relay_for(sync, settings)
        if relay is None:
            raise NotConfigured("The hub has no signing key: run `integra keys init`.")
        return hub.directory(sync, relay)

    return await session.run_sync(sign)


@feed_router.get("/keys", responses=responses(NotConfigured))
async def get_keys(request: Request, session: SessionDep) -> dict[str, Any]:
    """Every key this node has signed with, retired ones included, with rotation notices."""
    settings = _settings(request)
    rows = (await session.scalars(select(NodeKey).order_by(NodeKey.created_at))).all()
    return {
        "origin": settings.country,
        "keys": [
            {
                "key_id": k.key_id,
                "public_key": k.public_key,
                "created_at": k.created_at.isoformat(),
                "retired_at": k.retired_at.isoformat() if k.retired_at else None,
                "announcement": k.announcement,
            }
            for k in rows
        ],
    }


# --- the review queue ---------------------------------------------------------------------


class HoldRead(BaseModel):
    id: int
    record_type: str
    record_id: uuid.UUID
    version: int
    status: str
    hits: list[dict[str, Any]]
    created_at: Any
    resolved_by: str | None
    justification: str | None


class Release(BaseModel):
    justification: Annotated[
        str,
        Field(
            min_length=10,
            max_length=5000,
            description="Why the finding is not personal data; kept in the audit log.",
        ),
    ]


@router.get("/holds", response_model=list[HoldRead], responses=responses(Forbidden))
async def list_holds(
    session: SessionDep,
    by: CurrentUser,
    status: Literal["held", "released", "superseded"] = "held",
) -> list[HoldRead]:
    """Records the personal-data gate kept from the feed, with what it found and where.
    Editors fix the text (a new version is scanned again); administrators may release."""
    if by.role not in ("admin", "editor"):
        raise Forbidden("The review queue is for editors and administrators.")
    rows = await session.scalars(
        select(GateHold).where(GateHold.status == status).order_by(GateHold.id)
    )
    return [HoldRead.model_validate(h, from_attributes=True) for h in rows]


@router.post(
    "/holds/{hold_id}/release",
    response_model=HoldRead,
    responses=responses(Forbidden, NotFound, Conflict),
)
async def release_hold(hold_id: int, data: Release, session: SessionDep, by: AdminUser) -> HoldRead:
    """Publish a held record as it is, on an administrator's recorded justification."""
    hold = await session.get(GateHold, hold_id)
    if hold is None:
        raise NotFound(f"No held record {hold_id}.")
    if hold.status != "held":
        raise Conflict(f"This hold is {hold.status}, not held.")
    hold.status, hold.resolved_at = "released", utcnow()
    hold.resolved_by, hold.justification = by.label, data.justification
    audit.record(
        session,
        by,
        action="release",
        entity_type=hold.record_type,
        entity_id=hold.record_id,
        detail={"version": hold.version, "hold": hold.id, "justification": data.justification},
    )
    topic = PRACTICE_CHANGED if hold.record_type == "practice" else STUDY_VISIT_CHANGED
    outbox.enqueue(session, topic, hold.record_id)
    await session.flush()
    return HoldRead.model_validate(hold, from_attributes=True)


# --- the hub ------------------------------------------------------------------------------

hub_router = APIRouter(prefix="/api/v1/hub", tags=["hub"])


class PeerStatus(BaseModel):
    origin: str
    kind: str = Field(description="`node`: a node this hub pulls; `hub`: a hub this node mirrors.")
    base_url: str
    last_seq: int
    checkpoint_size: int
    last_success_at: Any
    last_attempt_at: Any
    last_error: str | None
    next_attempt_at: Any
    records_held: int
    refusals: int


@hub_router.get("/peers", response_model=list[PeerStatus], responses=responses(Forbidden))
async def peer_status(session: SessionDep, _admin: AdminUser) -> list[PeerStatus]:
    """Per enrolled node (on a hub) or mirrored hub (on a node): where sync stands, its last
    error, the records held from it, and how many entries were refused."""
    out = []
    peers = await session.scalars(
        select(Peer).where(Peer.kind != PEER_LISTED).order_by(Peer.origin)
    )
    for peer in peers.all():
        state = await session.get(PeerSync, peer.id)
        counted = select(func.count()).select_from(FederatedRecord)
        counted = counted.where(FederatedRecord.withdrawn.is_(False))
        if peer.kind != PEER_HUB:  # a mirrored hub brings the records of every origin
            counted = counted.where(FederatedRecord.origin == peer.origin)
        held = await session.scalar(counted)
        refused = await session.scalar(
            select(func.count()).select_from(SyncRefusal).where(SyncRefusal.peer_id == peer.id)
        )
        out.append(
            PeerStatus(
                origin=peer.origin,
                kind=peer.kind,
                base_url=peer.base_url,
                last_seq=state.cursor if state else 0,
                checkpoint_size=state.checkpoint_size if state else 0,
                last_success_at=state.last_success_at if state else None,
                last_attempt_at=state.last_attempt_at if state else None,
                last_error=state.last_error if state else None,
                next_attempt_at=state.next_attempt_at if state else None,
                records_held=held or 0,
                refusals=refused or 0,
            )
        )
    return out


class RefusalRead(BaseModel):
    id: int
    seq: int | None
    record_id: str | None
    reason: str
    at: Any


class RefusalPage(BaseModel):
    items: list[RefusalRead]
    next_cursor: int | None


@hub_router.get(
    "/peers/{origin}/refusals", response_model=RefusalPage, responses=responses(Forbidden, NotFound)
)
async def peer_refusals(
    origin: Annotated[str, Path(pattern=r"^[A-Z]{2}$")],
    session: SessionDep,
    _admin: AdminUser,
    cursor: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> RefusalPage:
    """Every entry the hub refused from this node, with the reason, oldest first."""
    peer = await session.scalar(select(Peer).where(Peer.origin == origin))
    if peer is None:
        raise NotFound(f"No enrolled node {origin}.")
    rows = (
        await session.scalars(
            select(SyncRefusal)
            .where(SyncRefusal.peer_id == peer.id, SyncRefusal.id > cursor)
            .order_by(SyncRefusal.id)
            .limit(limit + 1)
        )
    ).all()
    items = [RefusalRead.model_validate(r, from_attributes=True) for r in rows[:limit]]
    return RefusalPage(items=items, next_cursor=rows[limit - 1].id if len(rows) > limit else None)


class FederatedRead(BaseModel):
    record_id: str
    origin: str
    record_type: str
    version: int
    withdrawn: bool
    body: dict[str, Any] | None
    envelope: dict[str, Any] = Field(description="The origin's signed envelope, as received.")


pool_router = APIRouter(prefix="/api/v1/eu", tags=["EU pool"])


@pool_router.get(
    "/records/{record_id}", response_model=FederatedRead, responses=responses(NotFound)
)
async def federated_record(
    record_id: Annotated[str, Path(pattern=r"^[A-Z]{2}:[0-9A-Za-z-]{1,77}$")], session: SessionDep
) -> FederatedRead:
    """A record of the EU pool (held by the hub, or by a node mirroring it), with the envelope
    its origin signed: verify it anywhere with `integra verify`."""
    record = await session.get(FederatedRecord, record_id)
    if record is None:
        raise NotFound(f"No record {record_id[:80]} on this hub.")
    return FederatedRead(
        record_id=record.record_id,
        origin=record.origin,
        record_type=record.record_type,
        version=record.version,
        withdrawn=record.withdrawn,
        body=record.body,
        envelope=json.loads(record.signed_envelope),
    )


class HubHit(BaseModel):
    record_id: str
    origin: str
    record_type: str
    kind: str
    title: str
    summary: str
    snippet: str
    country: str | None


class HubSearchPage(BaseModel):
    items: list[HubHit]
    total: int
    facets: dict[str, list[dict[str, Any]]]
    next_cursor: str | None


@pool_router.get("/search", response_model=HubSearchPage, responses=responses())
async def hub_search(
    request: Request,
    session: SessionDep,
    q: Annotated[str, Query(max_length=500)] = "",
    country: Annotated[list[Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]], Query()] = [],  # noqa: B006
    kind: Annotated[list[Annotated[str, Field(max_length=40)]], Query()] = [],  # noqa: B006
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> HubSearchPage:
    """EU-wide search over the pool: on the hub, what it holds from every node; on a node
    that mirrors the hub, its copy of the same. A country facet; each hit names its origin,
    whose signature `GET /api/v1/eu/records/{id}` shows."""
    filters = {"source": frozenset({"federated"})}
    if country:
        filters["country"] = frozenset(c.upper() for c in country)
    if kind:
        filters["kind"] = frozenset(kind)
    result = await request.app.state.search.search(
        session, SearchQuery(text=q, filters=filters, limit=limit, cursor=cursor)
    )
    rows = (
        await session.scalars(
            select(FederatedRecord).where(
                FederatedRecord.search_id.in_(result.record_ids),
                FederatedRecord.withdrawn.is_(False),
            )
        )
    ).all()
    by_id = {r.search_id: r for r in rows}
    terms = query_terms(q)
    items = []
    for search_id in result.record_ids:
        record = by_id.get(search_id)
        body = record.body if record is not None else None
        if record is None or body is None:
            continue
        text_ = (
            f"{body.get('summary') or body.get('purpose') or ''} {body.get('description') or ''}"
        )
        items.append(
            HubHit(
                record_id=record.record_id,
                origin=record.origin,
                record_type=record.record_type,
                kind=str(body.get("kind", record.record_type)),
                title=str(body.get("title", "")),
                summary=str(body.get("summary") or body.get("purpose") or ""),
                snippet=snippet(text_, terms),
                country=body.get("country") or record.origin,
            )
        )
    facets = {
        f: [{"value": v, "count": n} for v, n in counts.items()]
        for f, counts in result.facets.items()
    }
    return HubSearchPage(
        items=items, total=result.total, facets=facets, next_cursor=result.next_cursor
    )


# The hub's own paths for the pool, kept for clients written before the pool had its own.
hub_router.add_api_route(
    "/records/{record_id}", federated_record, response_model=FederatedRead, include_in_schema=False
)
hub_router.add_api_route(
    "/search", hub_search, response_model=HubSearchPage, include_in_schema=False
)
