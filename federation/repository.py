"""The federation's queries: signing keys, peer status, refusals, the EU pool, held records.

The route-side reads take the request's async session; the hold queries the outbox handlers
run take the job's sync session.
"""

import uuid
from collections.abc import Sequence

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

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
from node.core.db import utcnow
from node.core.models import User

# --- keys and peers -----------------------------------------------------------------------


async def node_keys(session: AsyncSession) -> Sequence[NodeKey]:
    """Every key this node has signed with, oldest first."""
    return (await session.scalars(select(NodeKey).order_by(NodeKey.created_at))).all()


async def peer_status(session: AsyncSession) -> list[tuple[Peer, PeerSync | None, int, int]]:
    """Each peer this node pulls (listed ones aside) by origin, with its sync state, how many
    live records it brought and how many of its entries were refused, in one query."""
    live = select(func.count()).select_from(FederatedRecord)
    live = live.where(FederatedRecord.withdrawn.is_(False))
    # A mirrored hub brings the records of every origin; a node only its own.
    held = case(
        (Peer.kind == PEER_HUB, live.scalar_subquery()),
        else_=live.where(FederatedRecord.origin == Peer.origin).correlate(Peer).scalar_subquery(),
    )
    refused = (
        select(func.count())
        .select_from(SyncRefusal)
        .where(SyncRefusal.peer_id == Peer.id)
        .correlate(Peer)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Peer, PeerSync, held, refused)
        .outerjoin(PeerSync, PeerSync.peer_id == Peer.id)
        .where(Peer.kind != PEER_LISTED)
        .order_by(Peer.origin)
    )
    return [(peer, state, held or 0, refused or 0) for peer, state, held, refused in rows]


async def peer_by_origin(session: AsyncSession, origin: str) -> Peer | None:
    return await session.scalar(select(Peer).where(Peer.origin == origin))


async def refusals(
    session: AsyncSession, peer_id: int, *, after: int, limit: int
) -> Sequence[SyncRefusal]:
    """The peer's refused entries after the refusal `after`, oldest first, at most `limit`."""
    return (
        await session.scalars(
            select(SyncRefusal)
            .where(SyncRefusal.peer_id == peer_id, SyncRefusal.id > after)
            .order_by(SyncRefusal.id)
            .limit(limit)
        )
    ).all()


# --- the EU pool --------------------------------------------------------------------------


async def federated_record(session: AsyncSession, record_id: str) -> FederatedRecord | None:
    return await session.get(FederatedRecord, record_id)


# --- held records -------------------------------------------------------------------------


async def holds(session: AsyncSession, status: str) -> Sequence[GateHold]:
    return (
        await session.scalars(
            select(GateHold).where(GateHold.status == status).order_by(GateHold.id)
        )
    ).all()


async def hold_by_id(session: AsyncSession, hold_id: int) -> GateHold | None:
    return await session.get(GateHold, hold_id)


def hold_of(
    session: Session, record_type: str, local_id: uuid.UUID, version: int
) -> GateHold | None:
    """The hold of this version of a record, whatever its status."""
    return session.scalar(
        select(GateHold).where(
            GateHold.record_type == record_type,
            GateHold.record_id == local_id,
            GateHold.version == version,
        )
    )


def is_released(session: Session, record_type: str, local_id: uuid.UUID, version: int) -> bool:
    """Whether an administrator released this version of a record."""
    released = session.scalar(
        select(GateHold.id).where(
            GateHold.record_type == record_type,
            GateHold.record_id == local_id,
            GateHold.version == version,
            GateHold.status == "released",
        )
    )
    return released is not None


def is_held(session: Session, record_type: str, local_id: uuid.UUID) -> bool:
    """Whether a hold of any version of the record is still open."""
    open_hold = session.scalar(
        select(GateHold.id)
        .where(
            GateHold.record_type == record_type,
            GateHold.record_id == local_id,
            GateHold.status == "held",
        )
        .limit(1)
    )
    return open_hold is not None


def holds_of(session: Session, record_type: str, local_id: uuid.UUID) -> Sequence[GateHold]:
    """Every hold of a record, whatever its version and status."""
    return session.scalars(
        select(GateHold).where(GateHold.record_type == record_type, GateHold.record_id == local_id)
    ).all()


def resolve_held(
    session: Session, record_type: str, local_id: uuid.UUID, status: str, below: int | None
) -> None:
    """Give the record's holds still held (those below version `below`, if given) `status`."""
    stmt = update(GateHold).where(
        GateHold.record_type == record_type,
        GateHold.record_id == local_id,
        GateHold.status == "held",
    )
    if below is not None:
        stmt = stmt.where(GateHold.version < below)
    session.execute(stmt.values(status=status, resolved_at=utcnow()))


# --- people -------------------------------------------------------------------------------


def user_names(session: Session) -> list[str]:
    """The names of this node's user accounts."""
    return list(session.scalars(select(User.name)))
