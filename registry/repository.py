"""All of the registry's SQL."""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, Select, Text, and_, cast, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, selectinload

from node.core.text import fold, like_pattern
from registry.models import (
    ContactPoint,
    Organisation,
    OrganisationIdentifier,
    OrganisationTerm,
    Protocol,
    ProtocolParty,
)


@dataclass
class OrganisationFilter:
    """AND across fields, OR within one field's values."""

    kind: list[str] = field(default_factory=list)
    sector: list[str] = field(default_factory=list)
    level: list[str] = field(default_factory=list)
    country: list[str] = field(default_factory=list)
    region: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    area: list[str] = field(default_factory=list)
    target_group: list[str] = field(default_factory=list)
    language: list[str] = field(default_factory=list)  # ISO 639-1 codes, lower case
    parent_id: uuid.UUID | None = None
    q: str | None = None


def _organisation_query() -> Select[Organisation]:
    return select(Organisation).options(
        selectinload(Organisation.identifiers), selectinload(Organisation.terms)
    )


async def get_organisation(
    session: AsyncSession, organisation_id: uuid.UUID, *, with_contacts: bool = False
) -> Organisation | None:
    stmt = _organisation_query().where(Organisation.id == organisation_id)
    if with_contacts:
        stmt = stmt.options(selectinload(Organisation.contact_points))
    return (await session.scalars(stmt)).one_or_none()


async def organisation_exists(session: AsyncSession, organisation_id: uuid.UUID) -> bool:
    found = await session.scalar(select(Organisation.id).where(Organisation.id == organisation_id))
    return found is not None


async def list_organisations(
    session: AsyncSession, filters: OrganisationFilter, *, after: tuple[str, str] | None, limit: int
) -> Sequence[Organisation]:
    stmt = _organisation_query().order_by(Organisation.name, Organisation.id).limit(limit)
    return (await session.scalars(_filtered(stmt, filters, after))).all()


# What a page of the organisation list shows, read as columns (no records, no related rows
# loaded through the ORM): a list page of 50 costs three statements and no object per row.
ORGANISATION = Organisation.__table__
LISTED_COLUMNS = tuple(c for c in ORGANISATION.c if c.key != "search_text")


async def organisation_page_rows(
    session: AsyncSession, filters: OrganisationFilter, *, after: tuple[str, str] | None, limit: int
) -> Sequence[Row[Any]]:
    """The rows of a list page, in list order (the same filters as `list_organisations`)."""
    stmt: Select[Any] = (
        select(*LISTED_COLUMNS).order_by(Organisation.name, Organisation.id).limit(limit)
    )
    # On the session's connection: a Core statement needs none of the ORM's execution steps.
    connection = await session.connection()
    rows: Sequence[Row[Any]] = (await connection.execute(_filtered(stmt, filters, after))).all()
    return rows


async def organisation_children(
    session: AsyncSession, ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, list[tuple[str, str]]], dict[uuid.UUID, list[tuple[str, str]]]]:
    """Each organisation's identifiers (scheme, value) and terms (facet, term), in the order
    the records' relations give them (by scheme; by term)."""
    identifiers: dict[uuid.UUID, list[tuple[str, str]]] = {}
    terms: dict[uuid.UUID, list[tuple[str, str]]] = {}
    if not ids:
        return identifiers, terms
    identifier, term = OrganisationIdentifier.__table__.c, OrganisationTerm.__table__.c
    connection = await session.connection()
    for org_id, scheme, value in await connection.execute(
        select(identifier.organisation_id, identifier.scheme, identifier.value)
        .where(identifier.organisation_id.in_(ids))
        .order_by(identifier.scheme, identifier.id)
    ):
        identifiers.setdefault(org_id, []).append((scheme, value))
    for org_id, facet, value in await connection.execute(
        select(term.organisation_id, term.facet, term.term)
        .where(term.organisation_id.in_(ids))
        .order_by(term.term)
    ):
        terms.setdefault(org_id, []).append((facet, value))
    return identifiers, terms


def _filtered(
    stmt: Select[Any], filters: OrganisationFilter, after: tuple[str, str] | None
) -> Select[Any]:
    for column, values in (
        (Organisation.kind, filters.kind),
        (Organisation.sector, filters.sector),
        (Organisation.level, filters.level),
        (Organisation.country, filters.country),
        (Organisation.region, filters.region),
    ):
        if values:
            stmt = stmt.where(column.in_(values))
    if filters.status:
        stmt = stmt.where(Organisation.status.in_(filters.status))
    else:
        stmt = stmt.where(Organisation.status != "archived")
    for facet, values in (("area", filters.area), ("target_group", filters.target_group)):
        if values:
            tagged = select(OrganisationTerm.organisation_id).where(
                OrganisationTerm.facet == facet, OrganisationTerm.term.in_(values)
            )
            stmt = stmt.where(Organisation.id.in_(tagged))
    if filters.language:
        # A JSON list of two-letter codes: its text holds `"el"` when it lists Greek (the
        # codes are checked letters, so nothing in them is a LIKE wildcard).
        listed = cast(Organisation.languages, Text)
        stmt = stmt.where(or_(*(listed.like(f'%"{code}"%') for code in filters.language)))
    if filters.parent_id is not None:
        stmt = stmt.where(Organisation.parent_id == filters.parent_id)
    if filters.q:
        stmt = stmt.where(Organisation.search_text.like(like_pattern(fold(filters.q)), escape="\\"))
    if after is not None:
        stmt = stmt.where(
            tuple_(Organisation.name, Organisation.id) > (after[0], uuid.UUID(after[1]))
        )
    return stmt


async def find_organisation_by_ref(session: AsyncSession, ref: str) -> Organisation | None:
    return (
        await session.scalars(_organisation_query().where(Organisation.ref == ref))
    ).one_or_none()


async def find_organisation_by_identifier(
    session: AsyncSession, scheme: str, value: str
) -> Organisation | None:
    owner = select(OrganisationIdentifier.organisation_id).where(
        OrganisationIdentifier.scheme == scheme, OrganisationIdentifier.value == value
    )
    return (await session.scalars(_organisation_query().where(Organisation.id.in_(owner)))).first()


async def find_organisation_by_name(
    session: AsyncSession, country: str, name: str
) -> Organisation | None:
    stmt = _organisation_query().where(
        Organisation.country == country, func.lower(Organisation.name) == name.lower()
    )
    return (await session.scalars(stmt)).first()


async def identifier_owners(
    session: AsyncSession, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], uuid.UUID]:
    if not keys:
        return {}
    rows = await session.execute(
        select(
            OrganisationIdentifier.scheme,
            OrganisationIdentifier.value,
            OrganisationIdentifier.organisation_id,
        ).where(
            or_(
                *(
                    and_(OrganisationIdentifier.scheme == s, OrganisationIdentifier.value == v)
                    for s, v in keys
                )
            )
        )
    )
    return {(s, v): org_id for s, v, org_id in rows}


async def ancestors(session: AsyncSession, organisation_id: uuid.UUID) -> list[uuid.UUID]:
    """The chain of parents above an organisation, nearest first (stops on a loop)."""
    chain: list[uuid.UUID] = []
    current: uuid.UUID | None = organisation_id
    while current is not None and current not in chain:
        chain.append(current)
        current = await session.scalar(
            select(Organisation.parent_id).where(Organisation.id == current)
        )
    return chain[1:]


async def ref_taken(
    session: AsyncSession, model: type[Organisation] | type[Protocol], ref: str
) -> uuid.UUID | None:
    return await session.scalar(select(model.id).where(model.ref == ref))


async def get_contact_point(session: AsyncSession, contact_id: uuid.UUID) -> ContactPoint | None:
    return await session.get(ContactPoint, contact_id)


async def list_contact_points(
    session: AsyncSession, organisation_id: uuid.UUID, *, include_archived: bool
) -> Sequence[ContactPoint]:
    stmt = (
        select(ContactPoint)
        .where(ContactPoint.organisation_id == organisation_id)
        .order_by(ContactPoint.is_primary.desc(), ContactPoint.created_at, ContactPoint.id)
    )
    if not include_archived:
        stmt = stmt.where(ContactPoint.status != "archived")
    return (await session.scalars(stmt)).all()


def _protocol_query() -> Select[Protocol]:
    return select(Protocol).options(selectinload(Protocol.parties))


async def get_protocol(session: AsyncSession, protocol_id: uuid.UUID) -> Protocol | None:
    return (
        await session.scalars(_protocol_query().where(Protocol.id == protocol_id))
    ).one_or_none()


async def find_protocol_by_ref(session: AsyncSession, ref: str) -> Protocol | None:
    return (await session.scalars(_protocol_query().where(Protocol.ref == ref))).one_or_none()


async def list_protocols(
    session: AsyncSession,
    *,
    country: list[str],
    status: list[str],
    organisation_id: uuid.UUID | None,
    q: str | None,
    after: tuple[str, str] | None,
    limit: int,
) -> Sequence[Protocol]:
    stmt = _protocol_query().order_by(Protocol.title, Protocol.id).limit(limit)
    if country:
        stmt = stmt.where(Protocol.country.in_(country))
    if status:
        stmt = stmt.where(Protocol.status.in_(status))
    else:
        stmt = stmt.where(Protocol.status != "archived")
    if organisation_id is not None:
        party_of = select(ProtocolParty.protocol_id).where(
            ProtocolParty.organisation_id == organisation_id
        )
        stmt = stmt.where(Protocol.id.in_(party_of))
    if q:
        stmt = stmt.where(Protocol.search_text.like(like_pattern(fold(q)), escape="\\"))
    if after is not None:
        stmt = stmt.where(tuple_(Protocol.title, Protocol.id) > (after[0], uuid.UUID(after[1])))
    return (await session.scalars(stmt)).all()


async def organisation_names(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Organisation.id, Organisation.name).where(Organisation.id.in_(ids))
    )
    return {org_id: name for org_id, name in rows}


async def organisation_refs(session: AsyncSession) -> dict[uuid.UUID, str]:
    rows = await session.execute(select(Organisation.id, Organisation.ref))
    return {org_id: ref for org_id, ref in rows if ref}


def organisation_labels(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The name of each organisation, read in a synchronous session (indexing, jobs)."""
    if not ids:
        return {}
    stmt = select(Organisation.id, Organisation.name).where(Organisation.id.in_(ids))
    return {org_id: name for org_id, name in session.execute(stmt)}
