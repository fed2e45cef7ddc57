"""A report's recommendations followed up: items addressed to organisations of the registry
or the EU level, each with a status its addressee's editors or the National Point update
(received → under consideration → accepted → implemented, or declined), a day and a note per
change. A change gives the published report a new version, so the status travels with it.

Publishing a report queues a mail to each addressee's primary contact point
(`RecommendationNotice`, sent by `practices.study_visits.notify` off the request).
"""

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import registry
from node.core import audit, outbox
from node.core.auth import Principal
from node.core.db import utcnow
from node.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from practices.study_visits.models import (
    Recommendation,
    RecommendationAddressee,
    RecommendationNotice,
    StudyVisit,
)
from practices.study_visits.schemas import (
    EU_LEVEL,
    AddresseeRead,
    NoticeRead,
    RecommendationItem,
    RecommendationRead,
    StatusChange,
)
from practices.tasks import STUDY_VISIT_CHANGED
from practices.vocabulary import RecommendationStatus

# A published report's addressees to be told by mail (the visit's id).
RECOMMENDATIONS_PUBLISHED = "study_visit.recommendations_published"
EU_LEVEL_NAME = "EU level"
OPEN = (
    RecommendationStatus.received,
    RecommendationStatus.under_consideration,
    RecommendationStatus.accepted,
)


def _key(item: Recommendation | RecommendationItem) -> tuple[str, bool, frozenset[str]]:
    if isinstance(item, Recommendation):
        return item.text, item.eu_level, frozenset(str(i) for i in item.organisation_ids)
    orgs = frozenset(str(a) for a in item.addressees if a != EU_LEVEL)
    return item.text, EU_LEVEL in item.addressees, orgs


async def check_items(session: AsyncSession, items: Sequence[RecommendationItem]) -> None:
    for index, item in enumerate(items):
        for at, addressee in enumerate(item.addressees):
            if addressee != EU_LEVEL and not await registry.organisation_exists(
                session, uuid.UUID(str(addressee))
            ):
                raise InvalidInput(
                    f"recommendation_items.{index}.addressees.{at}",
                    f"no organisation with id {addressee} in the registry",
                )


def set_items(visit: StudyVisit, items: Sequence[RecommendationItem]) -> bool:
    """Make the report's items these, in this order; an item whose text and addressees stay
    keeps its status and history. Returns whether anything changed (checked beforehand with
    `check_items`)."""
    current = list(visit.recommendation_items)
    if [_key(i) for i in current] == [_key(i) for i in items]:
        return False
    kept = {_key(i): i for i in current}
    today = utcnow().date()
    wanted: list[Recommendation] = []
    for position, item in enumerate(items):
        found = kept.pop(_key(item), None)
        if found is None:
            found = Recommendation(
                text=item.text,
                eu_level=EU_LEVEL in item.addressees,
                status=RecommendationStatus.received.value,
                status_date=today,
                history=[{"status": "received", "date": today.isoformat(), "note": None}],
                addressees=[
                    RecommendationAddressee(organisation_id=uuid.UUID(str(a)))
                    for a in dict.fromkeys(item.addressees)
                    if a != EU_LEVEL
                ],
            )
        found.position = position
        wanted.append(found)
    visit.recommendation_items = wanted
    return True


def mark_received(visit: StudyVisit) -> None:
    """At publication, the items not yet followed up are received that day."""
    today = utcnow().date()
    for item in visit.recommendation_items:
        if item.status == RecommendationStatus.received and len(item.history) <= 1:
            item.status_date = today
            item.history = [{"status": "received", "date": today.isoformat(), "note": None}]


def queue_notices(session: AsyncSession, visit: StudyVisit, known: Iterable[uuid.UUID]) -> None:
    """At publication: a mail to each addressee not told yet (`known`: those already told),
    sent by a background job (`notify`) after the commit."""
    told = set(known)
    wanted = dict.fromkeys(o for item in visit.recommendation_items for o in item.organisation_ids)
    new = [o for o in wanted if o not in told]
    for organisation_id in new:
        session.add(RecommendationNotice(study_visit_id=visit.id, organisation_id=organisation_id))
    if new:
        outbox.enqueue(session, RECOMMENDATIONS_PUBLISHED, visit.id)


async def notified(session: AsyncSession, visit_id: uuid.UUID) -> set[uuid.UUID]:
    rows = await session.scalars(
        select(RecommendationNotice.organisation_id).where(
            RecommendationNotice.study_visit_id == visit_id
        )
    )
    return set(rows)


async def erase_text(session: AsyncSession, visit_id: uuid.UUID, marker: str) -> int:
    """A report withdrawn for personal data: its items' words replaced by ``marker`` and the
    notes of their history emptied (their statuses and days stay). Returns how many."""
    items = list(
        await session.scalars(
            select(Recommendation).where(Recommendation.study_visit_id == visit_id)
        )
    )
    for item in items:
        item.text = marker
        item.history = [{**step, "note": None} for step in item.history]
    return len(items)


async def _names(session: AsyncSession, items: Iterable[Recommendation]) -> dict[uuid.UUID, str]:
    ids = {o for item in items for o in item.organisation_ids}
    return await registry.organisation_names(session, ids) if ids else {}


def _read(
    item: Recommendation, visit: StudyVisit, names: dict[uuid.UUID, str]
) -> RecommendationRead:
    addressees = [
        AddresseeRead(organisation_id=o, name=names.get(o, str(o))) for o in item.organisation_ids
    ]
    if item.eu_level:
        addressees.append(AddresseeRead(name=EU_LEVEL_NAME, eu_level=True))
    return RecommendationRead(
        id=item.id,
        study_visit_id=visit.id,
        report_title=visit.title,
        report_status=visit.status,
        position=item.position,
        text=item.text,
        addressees=addressees,
        status=item.status,
        status_date=item.status_date,
        history=item.history,
    )


async def reads_of(session: AsyncSession, visit: StudyVisit) -> list[RecommendationRead]:
    names = await _names(session, visit.recommendation_items)
    return [_read(item, visit, names) for item in visit.recommendation_items]


def _may_follow_up(by: Principal, item: Recommendation) -> bool:
    return by.is_admin or any(by.may_edit(o) for o in item.organisation_ids)


async def change_status(
    session: AsyncSession, recommendation_id: uuid.UUID, data: StatusChange, *, by: Principal
) -> tuple[Recommendation, StudyVisit]:
    """Record what became of a recommendation (its addressee's editors or the National
    Point), audited; the published report gets a new version that the federation shares."""
    item = await session.get(Recommendation, recommendation_id)
    visit = await session.get(StudyVisit, item.study_visit_id) if item else None
    if item is None or visit is None or not (visit.status == "published" or by.is_admin):
        raise NotFound(f"No recommendation with id {recommendation_id}.")
    if not _may_follow_up(by, item):
        raise Forbidden(
            "The editors of an organisation it is addressed to, or the National Point,"
            " follow a recommendation up."
        )
    if visit.status != "published":
        raise Conflict("A recommendation is followed up once its report is published.")
    if item.status == data.status:
        raise Conflict(f"The recommendation is {item.status} already.")
    day = data.date or utcnow().date()
    if day > utcnow().date():
        raise InvalidInput("date", "a status cannot take effect in the future")
    old = item.status
    item.status = str(data.status)
    item.status_date = day
    item.history = [
        *item.history,
        {"status": str(data.status), "date": day.isoformat(), "note": data.note},
    ]
    item.updated_at = visit.updated_at = utcnow()
    await session.flush()
    outbox.enqueue(session, STUDY_VISIT_CHANGED, visit.id)
    audit.record(
        session,
        by,
        action="follow-up",
        entity_type="recommendation",
        entity_id=item.id,
        detail={
            "study_visit_id": str(visit.id),
            "from": old,
            "to": str(data.status),
            "date": day.isoformat(),
            "version": visit.version,
        },
    )
    return item, visit


async def visit_of(session: AsyncSession, recommendation_id: uuid.UUID) -> uuid.UUID | None:
    """The report a recommendation belongs to."""
    return await session.scalar(
        select(Recommendation.study_visit_id).where(Recommendation.id == recommendation_id)
    )


async def find_recommendations(
    session: AsyncSession,
    *,
    by: Principal,
    addressee: str | None = None,
    status: Sequence[str] = (),
    visit_id: uuid.UUID | None = None,
    open_only: bool = False,
) -> list[RecommendationRead]:
    """The recommendations of published reports (administrators: of every report), of one
    addressee (an organisation's id or `EU`), in these statuses, or the open ones."""
    stmt = (
        select(Recommendation, StudyVisit)
        .join(StudyVisit, StudyVisit.id == Recommendation.study_visit_id)
        .order_by(StudyVisit.published_at.desc(), StudyVisit.id, Recommendation.position)
    )
    if not by.is_admin:
        stmt = stmt.where(StudyVisit.status == "published")
    if visit_id is not None:
        stmt = stmt.where(StudyVisit.id == visit_id)
    if addressee == EU_LEVEL:
        stmt = stmt.where(Recommendation.eu_level.is_(True))
    elif addressee is not None:
        try:
            organisation_id = uuid.UUID(addressee)
        except ValueError:
            raise InvalidInput("addressee", "an organisation's id or EU") from None
        stmt = stmt.where(
            Recommendation.id.in_(
                select(RecommendationAddressee.recommendation_id).where(
                    RecommendationAddressee.organisation_id == organisation_id
                )
            )
        )
    wanted = list(status) or ([s.value for s in OPEN] if open_only else [])
    if wanted:
        stmt = stmt.where(Recommendation.status.in_(wanted))
    rows = (await session.execute(stmt)).all()
    names = await _names(session, (item for item, _ in rows))
    return [_read(item, visit, names) for item, visit in rows]


async def notices_of(session: AsyncSession, visit_id: uuid.UUID) -> list[NoticeRead]:
    rows: Sequence[RecommendationNotice] = (
        await session.scalars(
            select(RecommendationNotice)
            .where(RecommendationNotice.study_visit_id == visit_id)
            .order_by(RecommendationNotice.id)
        )
    ).all()
    names = await registry.organisation_names(session, {n.organisation_id for n in rows})
    return [
        NoticeRead(
            organisation_id=n.organisation_id,
            name=names.get(n.organisation_id, str(n.organisation_id)),
            state=n.state,
            attempts=n.attempts,
            last_error=n.last_error,
            sent_at=n.sent_at,
        )
        for n in rows
    ]
