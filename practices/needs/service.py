"""The rules of needs: who may record and change them, and how they are counted. Never
commits.

A signed-in user records needs for the organisations they belong to (an editor's or a
practitioner's organisations); the National Point's administrators for any organisation, and
they alone see the grouped view of every need. Each change is audited without its text, and
queues `NEEDS_CHANGED`, so the counts the federation shares follow it.
"""

import uuid
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from node.core import audit, outbox
from node.core.auth import Principal
from node.core.db import utcnow
from node.core.errors import Forbidden, InvalidInput, NotFound
from node.core.schemas import given
from practices.needs import repository
from practices.needs.models import Need
from practices.needs.schemas import (
    KindCount,
    NeedCreate,
    NeedGroup,
    NeedRead,
    NeedSummary,
    NeedUpdate,
    OrganisationRef,
)
from practices.needs.vocabulary import FACETS, FIELDS, NeedStatus
from registry import organisation_exists, organisation_names

NEEDS_CHANGED = "needs.changed"
SUMMARY = "summary"  # the outbox entity of NEEDS_CHANGED: the node's counts as a whole


def may_record(by: Principal, organisation_id: uuid.UUID) -> bool:
    """Administrators for any organisation; a signed-in user for their own organisations."""
    return by.is_admin or (by.is_signed_in and organisation_id in by.organisation_ids)


def visible_organisations(by: Principal) -> frozenset[uuid.UUID] | None:
    """Whose needs this user sees: every organisation's (None) for an administrator."""
    return None if by.is_admin else by.organisation_ids


async def create_need(session: AsyncSession, data: NeedCreate, *, by: Principal) -> Need:
    if not await organisation_exists(session, data.organisation_id):
        raise InvalidInput("organisation_id", "no organisation of the registry has this id")
    if not may_record(by, data.organisation_id):
        raise Forbidden("You may record needs only for the organisations you belong to.")
    need = Need(
        **data.model_dump(mode="json", exclude={"organisation_id"}),
        organisation_id=data.organisation_id,
        recorded_by_id=by.user_id,
        recorded_by_label=by.label,
    )
    session.add(need)
    await session.flush()
    _changed(session, by, need, "create", {"kind": need.kind})
    return need


async def get_need(session: AsyncSession, need_id: uuid.UUID, *, by: Principal) -> Need:
    need = await repository.get_need(session, need_id)
    # Another organisation's need is as absent as one that does not exist.
    if need is None or not (by.is_admin or need.organisation_id in by.organisation_ids):
        raise NotFound(f"No need {need_id}.")
    return need


async def update_need(
    session: AsyncSession, need_id: uuid.UUID, data: NeedUpdate, *, by: Principal
) -> Need:
    need = await get_need(session, need_id, by=by)
    if not may_record(by, need.organisation_id):
        raise Forbidden("You may change needs only of the organisations you belong to.")
    changes = given(data, mode="json")
    if "status" in changes and changes["status"] != need.status:
        need.addressed_at = utcnow() if changes["status"] == NeedStatus.addressed else None
    for name, value in changes.items():
        setattr(need, name, value)
    await session.flush()
    detail = {"fields": sorted(changes)} | ({"status": need.status} if "status" in changes else {})
    _changed(session, by, need, "update", detail)
    return need


def _changed(
    session: AsyncSession, by: Principal, need: Need, action: str, detail: dict[str, Any]
) -> None:
    """Audited (never the text) and queued for the shared counts."""
    audit.record(session, by, action=action, entity_type="need", entity_id=need.id, detail=detail)
    outbox.enqueue(session, NEEDS_CHANGED, SUMMARY)


async def list_needs(
    session: AsyncSession,
    *,
    by: Principal,
    organisation_id: uuid.UUID | None = None,
    kinds: Collection[str] = (),
    statuses: Collection[str] = (),
    terms: dict[str, list[str]] | None = None,
    after: tuple[str, str] | None = None,
    limit: int = 50,
) -> list[Need]:
    return await repository.list_needs(
        session,
        organisations=visible_organisations(by),
        organisation_id=organisation_id,
        kinds=kinds,
        statuses=statuses,
        terms=terms,
        after=after,
        limit=limit,
    )


async def need_reads(session: AsyncSession, needs: list[Need]) -> list[NeedRead]:
    names = await organisation_names(session, {n.organisation_id for n in needs})
    return [need_read(n, names.get(n.organisation_id)) for n in needs]


def need_read(need: Need, organisation_name: str | None) -> NeedRead:
    return NeedRead(
        id=need.id,
        organisation=OrganisationRef(id=need.organisation_id, name=organisation_name),
        kind=need.kind,
        target_groups=need.target_groups,
        settings=need.settings,
        areas=need.areas,
        intervention_types=need.intervention_types,
        description=need.description,
        status=need.status,
        status_note=need.status_note,
        addressed_at=need.addressed_at,
        shared=need.shared,
        recorded_by=need.recorded_by_label,
        created_at=need.created_at,
        updated_at=need.updated_at,
        version=need.version,
    )


# --- counting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """Needs of a kind (and of a term of a facet; None: whatever their terms): how many are
    open and addressed, and how many organisations they were recorded for."""

    kind: str
    facet: str | None
    term: str | None
    open: int
    addressed: int
    organisations: int


def tags_of(row: Any) -> list[tuple[str, str]]:
    """Each (facet, term) a need is tagged with, each once; terms no longer in the
    vocabulary are left out of counts."""
    found: list[tuple[str, str]] = []
    for facet, field in FIELDS.items():
        known = {m.value for m in FACETS[facet]}
        for term in dict.fromkeys(getattr(row, field) or []):
            if isinstance(term, str) and term in known:
                found.append((facet, term))
    return found


def _keys(row: Any) -> Iterable[tuple[str, str | None, str | None]]:
    yield row.kind, None, None
    for facet, term in tags_of(row):
        yield row.kind, facet, term


def count_cells(rows: Iterable[Any]) -> list[Cell]:
    """Counts by kind, and by kind, facet and term, of these needs."""
    opened: Counter[tuple[str, str | None, str | None]] = Counter()
    addressed: Counter[tuple[str, str | None, str | None]] = Counter()
    organisations: dict[tuple[str, str | None, str | None], set[uuid.UUID]] = {}
    for row in rows:
        for key in _keys(row):
            (addressed if row.status == NeedStatus.addressed else opened)[key] += 1
            organisations.setdefault(key, set()).add(row.organisation_id)
    return [
        Cell(*key, opened[key], addressed[key], len(orgs))
        for key, orgs in sorted(organisations.items(), key=lambda item: _order(item[0]))
    ]


def _order(key: tuple[str, str | None, str | None]) -> tuple[str, str, str]:
    return key[0], key[1] or "", key[2] or ""


async def summary(session: AsyncSession, statuses: Collection[str] = ()) -> NeedSummary:
    """Every need grouped by kind, organisation and term, with counts (administrators)."""
    rows = await repository.summary_rows(session, statuses)
    by_org: dict[uuid.UUID, list[Any]] = {}
    for row in rows:
        by_org.setdefault(row.organisation_id, []).append(row)
    names = await organisation_names(session, set(by_org))
    groups = [
        NeedGroup(
            kind=cell.kind,
            organisation=OrganisationRef(id=org, name=names.get(org)),
            facet=cell.facet,
            term=cell.term,
            open=cell.open,
            addressed=cell.addressed,
        )
        for org, org_rows in by_org.items()
        for cell in count_cells(org_rows)
    ]
    groups.sort(
        key=lambda g: (g.kind, (g.organisation.name or "").casefold(), g.facet or "", g.term or "")
    )
    kinds = [
        KindCount(kind=c.kind, open=c.open, addressed=c.addressed)
        for c in count_cells(rows)
        if c.facet is None
    ]
    opened = sum(1 for r in rows if r.status != NeedStatus.addressed)
    return NeedSummary(open=opened, addressed=len(rows) - opened, kinds=kinds, groups=groups)
