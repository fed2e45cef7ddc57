"""All SQL of needs."""

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from practices.needs.models import Need
from practices.needs.vocabulary import FIELDS


def _has_term(field: str, term: str) -> Any:
    """The needs whose list `field` holds `term` (a controlled term: letters, digits, `_`),
    read from the JSON text alike on SQLite and PostgreSQL."""
    return cast(getattr(Need, field), String).like(f'%"{term}"%')


async def list_needs(
    session: AsyncSession,
    *,
    organisations: Collection[uuid.UUID] | None,
    organisation_id: uuid.UUID | None = None,
    kinds: Collection[str] = (),
    statuses: Collection[str] = (),
    terms: dict[str, list[str]] | None = None,
    after: tuple[str, str] | None = None,
    limit: int = 50,
) -> list[Need]:
    """Needs, newest first; `organisations`: only those of these organisations (None: all)."""
    query = select(Need).order_by(Need.created_at.desc(), Need.id.desc()).limit(limit)
    if organisations is not None:
        query = query.where(Need.organisation_id.in_(list(organisations)))
    if organisation_id is not None:
        query = query.where(Need.organisation_id == organisation_id)
    if kinds:
        query = query.where(Need.kind.in_(list(kinds)))
    if statuses:
        query = query.where(Need.status.in_(list(statuses)))
    for facet, values in (terms or {}).items():
        for term in values:
            query = query.where(_has_term(FIELDS[facet], term))
    if after is not None:
        created, row_id = datetime.fromisoformat(after[0]), uuid.UUID(after[1])
        query = query.where(
            (Need.created_at < created) | ((Need.created_at == created) & (Need.id < row_id))
        )
    return list(await session.scalars(query))


async def get_need(session: AsyncSession, need_id: uuid.UUID) -> Need | None:
    return await session.get(Need, need_id)


SUMMARY_COLUMNS = (
    Need.kind,
    Need.organisation_id,
    Need.status,
    Need.target_groups,
    Need.settings,
    Need.areas,
    Need.intervention_types,
)


async def summary_rows(session: AsyncSession, statuses: Collection[str] = ()) -> list[Any]:
    """What the grouped view counts, of every need: no text."""
    query = select(*SUMMARY_COLUMNS)
    if statuses:
        query = query.where(Need.status.in_(list(statuses)))
    return list(await session.execute(query))


def shared_rows(session: Session) -> list[Any]:
    """What the shared counts are made of (a job's session): the needs whose recorder let them
    be counted, without text."""
    return list(session.execute(select(*SUMMARY_COLUMNS).where(Need.shared.is_(True))))
