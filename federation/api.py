"""The federation's routes: the signed feed (`/federation/v1`), the review queue of held
records, the hub's peer status and the EU pool (`/api/v1`). Queries are in repository.py, the
review queue's rules in holds.py, the response models in schemas.py."""

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import Field
from sqlalchemy.orm import Session

from federation import feed, holds, repository, signed_requests
from federation.pool import POOL, PUBLIC_POOL, pool_record, pool_source
from federation.reconcile import FeedStatus
from federation.reconcile import status as feed_status_of
from federation.schemas import (
    FederatedRead,
    FeedPage,
    HoldRead,
    HubSearchPage,
    PeerStatus,
    RefusalPage,
    RefusalRead,
    Release,
)
from federation.sync import relay_for, signed_directory
from node.core import answers
from node.core.auth import AdminUser, CurrentPrincipal, CurrentUser
from node.core.db import session_scope
from node.core.deps import SessionDep
from node.core.errors import AppError, Conflict, Forbidden, NotFound, responses
from node.core.schemas import serialised
from practices.search import service as search
from practices.search.port import SearchQuery

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


class NotAPeer(AppError):
    status_code = 401
    error = "Signed request refused"


async def feed_reader(request: Request, role: str) -> str | None:
    """The origin of the peer trusted to read that signed this request (HTTP Message
    Signatures, `federation.signed_requests`); None for an unsigned one, or one signed by a
    key that is no reader's here. Its nonce is kept at once, in a transaction of its own. A
    reader's request that does not check (too old, replayed, forged, its key revoked) is
    refused (401), never read as anonymous: the peer learns at once what is wrong."""
    try:
        signed = signed_requests.parse(
            request.headers.get("signature-input"), request.headers.get("signature")
        )
        if signed is None:
            return None
        # The path as sent (some servers put the query in `raw_path` too), and the query.
        path = request.scope.get("raw_path", b"").decode("latin-1").partition("?")[0]
        query = request.scope.get("query_string", b"").decode("latin-1")
        target = (path or request.url.path) + (f"?{query}" if query else "")
        async with session_scope(request.app.state.session_factory) as session:
            return await session.run_sync(
                lambda sync: signed_requests.admit(
                    sync, signed, method=request.method, target=target, role=role
                )
            )
    except signed_requests.SignatureRefused as exc:
        raise NotAPeer(str(exc)) from None


@feed_router.get("/feed", response_model=FeedPage, responses=responses(NotConfigured, NotAPeer))
async def get_feed(
    request: Request,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
) -> Response:
    """Entries after `after`, oldest first. Each is signed on its own over its canonical JSON;
    a v2 entry's payload signs its body's hash and the body travels beside it (`body`, null
    once an origin's signed redaction purged it, with `redacted`); a purged entry of feed v1
    comes as `{seq, leaf, redacted}`: its Merkle leaf, for the checkpoint's root.

    An entry of scope `network` comes whole only to an enrolled peer that signs its request
    with its key (`Signature-Input` and `Signature`, RFC 9421: method, path, query, created,
    key id and nonce, within 60 s of this server's clock, once); to anyone else it comes
    without its body (`body` null, `withheld: "network"`), its signature and leaf still
    checking. A request signed with a reader's key that does not check is refused (401).
    `national` records are never in the feed."""
    settings = _settings(request)
    size = min(limit, settings.feed_page_max)
    reader = await feed_reader(request, str(settings.role))

    entries = await session.run_sync(lambda sync: feed.page(sync, after=after, limit=size))
    last = entries[-1][0] if entries else None
    # Each payload goes out as the exact text that was signed, written into the page as it is
    # stored (a FeedPage, which the schema above documents), not parsed and written again; a
    # v2 entry's body beside it; a purged entry as its redaction marker.
    items = (feed.page_item(entry, network=reader is not None) for entry in entries)
    body = "".join(
        (
            '{"origin":',
            json.dumps(settings.country),
            ',"entries":[',
            ",".join(items),
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
        relay = relay_for(sync, settings)
        if relay is None:
            raise NotConfigured("The hub has no signing key: run `integra keys init`.")
        return signed_directory(sync, relay)

    return await session.run_sync(sign)


@feed_router.get("/keys", responses=responses(NotConfigured))
async def get_keys(request: Request, session: SessionDep) -> dict[str, Any]:
    """Every key this node has signed with, retired ones included, with rotation notices."""
    settings = _settings(request)
    rows = await repository.node_keys(session)
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


@router.get("/holds", response_model=list[HoldRead], responses=responses(Forbidden))
async def list_holds(
    session: SessionDep,
    by: CurrentUser,
    status: Literal["held", "released", "superseded"] = "held",
) -> list[HoldRead]:
    """Records the personal-data gate kept from the feed, with what it found: each finding's
    detector, field, words as written and the text around them (offsets too). Editors fix the
    text (a new version is scanned again); administrators may release."""
    rows = await holds.review_queue(session, by, status)
    return [HoldRead.model_validate(h, from_attributes=True) for h in rows]


@router.post(
    "/holds/{hold_id}/release",
    response_model=HoldRead,
    responses=responses(Forbidden, NotFound, Conflict),
)
async def release_hold(
    hold_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    data: Release,
    session: SessionDep,
    by: AdminUser,
) -> HoldRead:
    """Publish a held record as it is, on an administrator's recorded justification."""
    hold = await holds.release(session, hold_id, justification=data.justification, by=by)
    return HoldRead.model_validate(hold, from_attributes=True)


@router.get(
    "/feed/status", response_model=FeedStatus, responses=responses(Forbidden, NotConfigured)
)
async def feed_status(request: Request, session: SessionDep, _admin: AdminUser) -> FeedStatus:
    """Whether this node's feed is in step with what it publishes: each published record not in
    the feed at its current version (or still there though withdrawn), with its reason (`held`
    by the gate, with the detector and field; `failed`, with the error; `waiting`), a count by
    reason, what stops the whole feed (no signing key...), and every job that failed."""
    settings = _settings(request)
    return await session.run_sync(lambda sync: feed_status_of(sync, settings))


# --- the hub ------------------------------------------------------------------------------

hub_router = APIRouter(prefix="/api/v1/hub", tags=["hub"])


@hub_router.get("/peers", response_model=list[PeerStatus], responses=responses(Forbidden))
async def peer_status(session: SessionDep, _admin: AdminUser) -> list[PeerStatus]:
    """Per enrolled node (on a hub) or mirrored hub (on a node): where sync stands, its last
    error, the records held from it, and how many entries were refused."""
    return [PeerStatus.of(*row) for row in await repository.peer_status(session)]


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
    peer = await repository.peer_by_origin(session, origin)
    if peer is None:
        raise NotFound(f"No enrolled node {origin}.")
    rows = await repository.refusals(session, peer.id, after=cursor, limit=limit + 1)
    items = [RefusalRead.model_validate(r, from_attributes=True) for r in rows[:limit]]
    return RefusalPage(items=items, next_cursor=rows[limit - 1].id if len(rows) > limit else None)


pool_router = APIRouter(prefix="/api/v1/eu", tags=["EU pool"])


@pool_router.get(
    "/records/{record_id}", response_model=FederatedRead, responses=responses(NotFound)
)
async def federated_record(
    record_id: Annotated[str, Path(pattern=r"^[A-Z]{2}:[0-9A-Za-z-]{1,77}$")],
    session: SessionDep,
    by: CurrentPrincipal,
) -> FederatedRead:
    """A record of the EU pool (held by the hub, or by a node mirroring it), with the envelope
    its origin signed: verify it anywhere with `integra verify`. A record of scope `network`
    is there for signed-in readers only."""
    record = await pool_record(session, record_id, signed_in=by.is_signed_in)
    if record is None:
        raise NotFound(f"No record {record_id[:80]} on this hub.")
    return FederatedRead.of(record)


@pool_router.get("/search", response_model=HubSearchPage, responses=responses())
async def hub_search(
    request: Request,
    session: SessionDep,
    by: CurrentPrincipal,
    q: Annotated[str, Query(max_length=500)] = "",
    country: Annotated[list[Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]], Query()] = [],  # noqa: B006
    kind: Annotated[list[Annotated[str, Field(max_length=40)]], Query()] = [],  # noqa: B006
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """EU-wide search over the pool: on the hub, what it holds from every node; on a node
    that mirrors the hub, its copy of the same. A country facet; each hit names its origin,
    whose signature `GET /api/v1/eu/records/{id}` shows. Records of scope `network` are
    found by signed-in readers only."""
    filters = search.facet_filters(country=country, kind=kind)
    query = SearchQuery(text=q, filters=filters, limit=limit, cursor=cursor)
    source = pool_source(signed_in=by.is_signed_in)
    # The same answer for every reader alike: kept until the pool or the index changes.
    kept: answers.Answers = request.app.state.answers
    generation = await search.generation(session, request.app.state.search, "pool")
    key = ("eu/search", generation, source.name, search.query_key(query))
    if generation is not None and (answer := kept.get(key)) is not None:
        return answer
    results = await search.search(session, request.app.state.search, source, query)
    page = HubSearchPage(
        items=results.items,
        total=results.total,
        facets={f: [v.model_dump() for v in values] for f, values in results.facets.items()},
        next_cursor=results.next_cursor,
    )
    response = serialised(page, HubSearchPage)
    return kept.put(key, response) if generation is not None else response


__all__ = ["POOL", "PUBLIC_POOL", "pool_router"]

# The hub's own paths for the pool, kept for clients written before the pool had its own.
hub_router.add_api_route(
    "/records/{record_id}", federated_record, response_model=FederatedRead, include_in_schema=False
)
hub_router.add_api_route(
    "/search", hub_search, response_model=HubSearchPage, include_in_schema=False
)
