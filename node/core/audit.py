"""The audit log: every write, and every read of personal data (contact points)."""

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from node.core.auth import Principal
from node.core.db import defer_write
from node.core.models import AuditEntry


def record(
    session: AsyncSession,
    principal: Principal,
    *,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID | str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an entry to the caller's transaction: it is stored exactly when the change is (in
    a reading request, in the short writing transaction right after the read)."""
    entry = AuditEntry(
        actor_id=principal.user_id,
        actor=principal.label,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id) if entity_id is not None else None,
        detail=detail or {},
    )

    async def store(writer: AsyncSession) -> None:
        writer.add(entry)

    if not defer_write(session, store):
        session.add(entry)


def record_reads(
    session: AsyncSession, principal: Principal, entity_type: str, ids: Iterable[uuid.UUID]
) -> None:
    for entity_id in ids:
        record(session, principal, action="read", entity_type=entity_type, entity_id=entity_id)


async def list_entries(
    session: AsyncSession,
    *,
    after_id: int | None,
    limit: int,
    entity_type: str | None = None,
    entity_id: str | None = None,
    action: str | None = None,
    actor: str | None = None,
) -> Sequence[AuditEntry]:
    """Newest first; ``after_id`` continues from the last id of the previous page."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if after_id is not None:
        stmt = stmt.where(AuditEntry.id < after_id)
    for column, value in (
        (AuditEntry.entity_type, entity_type),
        (AuditEntry.entity_id, entity_id),
        (AuditEntry.action, action),
        (AuditEntry.actor, actor),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    return (await session.scalars(stmt)).all()
