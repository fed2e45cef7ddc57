"""All of the study-visit reports' SQL."""

import uuid
from collections.abc import Sequence
from datetime import date

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from practices.models import Practice
from practices.study_visits.models import StudyVisit, StudyVisitComment


async def get_study_visit(session: AsyncSession, visit_id: uuid.UUID) -> StudyVisit | None:
    return await session.get(StudyVisit, visit_id)


async def find_study_visit_by_ref(session: AsyncSession, ref: str) -> StudyVisit | None:
    return await session.scalar(select(StudyVisit).where(StudyVisit.ref == ref))


async def find_same_visit(
    session: AsyncSession, *, title: str, host_country: str, start_date: date
) -> StudyVisit | None:
    """Without a ref, the same visit is the same title, host and first day."""
    return await session.scalar(
        select(StudyVisit).where(
            StudyVisit.title == title,
            StudyVisit.host_country == host_country,
            StudyVisit.start_date == start_date,
        )
    )


async def ref_owner(session: AsyncSession, ref: str) -> uuid.UUID | None:
    return await session.scalar(select(StudyVisit.id).where(StudyVisit.ref == ref))


async def list_study_visits(
    session: AsyncSession,
    *,
    status: list[str],
    host_country: list[str],
    visible_to: uuid.UUID | None,
    after: tuple[str, str] | None,
    limit: int,
) -> Sequence[StudyVisit]:
    """``visible_to``: unpublished reports are listed only to their author (None = admin)."""
    stmt = select(StudyVisit).order_by(StudyVisit.title, StudyVisit.id).limit(limit)
    if status:
        stmt = stmt.where(StudyVisit.status.in_(status))
    if host_country:
        stmt = stmt.where(StudyVisit.host_country.in_(host_country))
    if visible_to is not None:
        stmt = stmt.where((StudyVisit.status == "published") | (StudyVisit.author_id == visible_to))
    if after is not None:
        stmt = stmt.where(tuple_(StudyVisit.title, StudyVisit.id) > (after[0], uuid.UUID(after[1])))
    return (await session.scalars(stmt)).all()


async def all_study_visits(session: AsyncSession) -> Sequence[StudyVisit]:
    return (await session.scalars(select(StudyVisit).order_by(StudyVisit.title))).all()


async def comments_of(session: AsyncSession, visit_id: uuid.UUID) -> Sequence[StudyVisitComment]:
    stmt = (
        select(StudyVisitComment)
        .where(StudyVisitComment.study_visit_id == visit_id)
        .order_by(StudyVisitComment.id)
    )
    return (await session.scalars(stmt)).all()


async def practice_refs(session: AsyncSession) -> dict[str, str]:
    """The refs of practices a report may name as observed, by practice id (as text)."""
    rows = await session.execute(select(Practice.id, Practice.ref))
    return {str(practice_id): ref for practice_id, ref in rows if ref}
