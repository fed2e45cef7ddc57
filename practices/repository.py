"""All of the practice database's SQL."""

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Select, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, selectinload

from practices.models import Practice, PracticeOrganisation


def practice_query() -> Select[Practice]:
    return select(Practice).options(
        selectinload(Practice.terms), selectinload(Practice.organisations)
    )


async def get_practice(session: AsyncSession, practice_id: uuid.UUID) -> Practice | None:
    stmt = practice_query().where(Practice.id == practice_id)
    return (await session.scalars(stmt)).one_or_none()


async def find_practice_by_ref(session: AsyncSession, ref: str) -> Practice | None:
    return (await session.scalars(practice_query().where(Practice.ref == ref))).one_or_none()


async def find_practice_by_title(
    session: AsyncSession, country: str | None, title: str
) -> Practice | None:
    stmt = practice_query().where(Practice.country == country, Practice.title == title)
    return (await session.scalars(stmt)).first()


async def practices_by_ids(
    session: AsyncSession, ids: list[uuid.UUID], *, published_only: bool
) -> dict[uuid.UUID, Practice]:
    if not ids:
        return {}
    stmt = practice_query().where(Practice.id.in_(ids))
    if published_only:
        stmt = stmt.where(Practice.status == "published")
    return {p.id: p for p in (await session.scalars(stmt)).all()}


async def list_practices(
    session: AsyncSession,
    *,
    status: list[str],
    kind: list[str],
    country: list[str],
    after: tuple[str, str] | None,
    limit: int,
    with_held: bool = True,
) -> Sequence[Practice]:
    """`with_held` False (an anonymous reader): neither the practices the gate holds nor
    those whose scope is not `public`."""
    stmt = practice_query().order_by(Practice.title, Practice.id).limit(limit)
    if not with_held:
        stmt = stmt.where(Practice.held.is_(False), Practice.scope == "public")
    for column, values in (
        (Practice.status, status),
        (Practice.kind, kind),
        (Practice.country, country),
    ):
        if values:
            stmt = stmt.where(column.in_(values))
    if after is not None:
        stmt = stmt.where(tuple_(Practice.title, Practice.id) > (after[0], uuid.UUID(after[1])))
    return (await session.scalars(stmt)).all()


async def ref_owner(session: AsyncSession, model: type[Practice], ref: str) -> uuid.UUID | None:
    return await session.scalar(select(model.id).where(model.ref == ref))


async def existing_practice_ids(session: AsyncSession, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if not ids:
        return set()
    return set((await session.scalars(select(Practice.id).where(Practice.id.in_(ids)))).all())


# --- held by the personal-data gate -------------------------------------------------------


def set_held(session: Session, practice_id: uuid.UUID, held: bool) -> None:
    """A bulk UPDATE, not an attribute change: the flag is no edit of the record, so neither
    its version (the ETag and the feed's version) nor its `updated_at` moves."""
    session.execute(
        update(Practice)
        .where(Practice.id == practice_id, Practice.held != held)
        .values(held=held, updated_at=Practice.updated_at)
    )


# The published practices an anonymous reader may not find:
# the condition word for word as the partial index `ix_practice_hidden` (migration 0023) has
# it, without parameters, so that both databases read that index of a handful of rows rather
# than every practice (0.6 s per search at 100,000 practices on PostgreSQL).
# SQLite, which has no statistics to choose by, is told which index to read.
HIDDEN_CONDITION = "status = 'published' AND (held OR scope <> 'public')"
HIDDEN = {
    dialect: text(f"SELECT id FROM practice {hint} WHERE {HIDDEN_CONDITION}").columns(
        Practice.__table__.c.id
    )
    for dialect, hint in (("sqlite", "INDEXED BY ix_practice_hidden"), ("postgresql", ""))
}


async def held_practice_ids(session: AsyncSession) -> frozenset[uuid.UUID]:
    """The published practices an anonymous reader may not find: those the gate holds, and
    those whose scope is `network` or `national` (signed-in readers only). Few (a review queue,
    the exceptions to the default scope), read per search through their partial index."""
    connection = await session.connection()  # Core: none of the ORM's execution steps
    return frozenset((await connection.execute(HIDDEN[connection.dialect.name])).scalars())


async def responsible_for(
    session: AsyncSession, organisation_ids: Collection[uuid.UUID], ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these practices have one of the organisations as their responsible body."""
    if not organisation_ids or not ids:
        return set()
    stmt = select(PracticeOrganisation.practice_id).where(
        PracticeOrganisation.practice_id.in_(ids),
        PracticeOrganisation.organisation_id.in_(organisation_ids),
        PracticeOrganisation.role == "responsible",
    )
    return set((await session.scalars(stmt)).all())


async def search_hit_rows(session: AsyncSession, ids: list[uuid.UUID]) -> Sequence[Any]:
    """What a search hit shows of these published practices, columns only: no record, no
    related rows. The status is checked here, not in SQL: with it in the WHERE clause SQLite
    walks the status index (every published practice) instead of looking the ids up."""
    if not ids:
        return []
    stmt = select(
        Practice.status,
        Practice.id,
        Practice.kind,
        Practice.title,
        Practice.original_title,
        Practice.country,
        Practice.language,
        Practice.summary,
        Practice.description,
        Practice.published_at,
        Practice.held,
    ).where(Practice.id.in_(ids))
    connection = await session.connection()  # Core: none of the ORM's execution steps
    return [row for row in (await connection.execute(stmt)).all() if row.status == "published"]
