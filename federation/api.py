"""The signed feed (`/federation/v1`) and the review queue of held records (`/api/v1`)."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from federation import feed
from federation.models import FeedEntry, GateHold, NodeKey
from node import audit, jobs
from node.auth import AdminUser, CurrentUser
from node.db import utcnow
from node.deps import SessionDep
from node.errors import AppError, Conflict, Forbidden, NotFound, responses
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
) -> FeedPage:
    """Entries after `after`, oldest first. Each is signed on its own over its canonical JSON."""
    settings = _settings(request)
    size = min(limit, settings.feed_page_max)

    def read(sync: Session) -> list[dict[str, Any]]:
        return [feed.envelope(e) for e in feed.page(sync, after=after, limit=size)]

    entries = await session.run_sync(read)
    last = entries[-1]["payload"]["seq"] if entries else None
    return FeedPage(
        origin=settings.country, entries=entries, next_after=last if len(entries) == size else None
    )


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
async def list_holds(session: SessionDep, by: CurrentUser, status: str = "held") -> list[HoldRead]:
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
    jobs.enqueue(session, topic, hold.record_id)
    await session.flush()
    return HoldRead.model_validate(hold, from_attributes=True)


__all__ = ["FeedEntry", "feed_router", "router"]
