"""The practice database (practices, policies, tools, training kits, guides), study-visit
reports, and search over them."""

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from practices import privacy as privacy
from practices import repository
from practices.models import Practice
from practices.study_visits.models import StudyVisit
from practices.tasks import PRACTICE_CHANGED as PRACTICE_CHANGED
from practices.tasks import PRACTICE_CORRECTED as PRACTICE_CORRECTED
from practices.tasks import PRACTICE_LEAKED as PRACTICE_LEAKED
from practices.tasks import STUDY_VISIT_CHANGED as STUDY_VISIT_CHANGED
from practices.tasks import STUDY_VISIT_LEAKED as STUDY_VISIT_LEAKED
from practices.tasks import locked_practice as locked_practice

Record = TypeVar("Record")


@dataclass(frozen=True)
class Current(Generic[Record]):
    """A record as an outbox handler finds it, its row locked until the job's transaction
    ends: its version (0 once it is deleted), and the record itself while it is published."""

    version: int
    published: Record | None


def published_practice(session: Session, practice_id: uuid.UUID) -> Current[Practice]:
    """The practice as last committed (terms and organisations loaded), locked."""
    practice = locked_practice(session, practice_id)
    return Current(
        practice.version if practice else 0,
        practice if practice is not None and practice.status == "published" else None,
    )


def published_visit(session: Session, visit_id: uuid.UUID) -> Current[StudyVisit]:
    """The study-visit report as last committed, locked."""
    visit = session.get(StudyVisit, visit_id, with_for_update=True, populate_existing=True)
    return Current(
        visit.version if visit else 0,
        visit if visit is not None and visit.status == "published" else None,
    )


class PublishedRecord(NamedTuple):
    record_type: str  # "practice" or "study_visit"
    id: uuid.UUID
    version: int
    title: str
    scope: str  # "public", "network" or "national" (which never leaves the node)


def published_records(session: Session) -> list[PublishedRecord]:
    """Every published practice and study-visit report, as the federation compares them with
    its feed (`federation.reconcile`): unlocked, without their bodies."""
    found: list[PublishedRecord] = []
    for kind, model in (("practice", Practice), ("study_visit", StudyVisit)):
        rows = session.execute(
            select(model.id, model.version, model.title, model.scope).where(
                model.status == "published"
            )
        )
        found += [PublishedRecord(kind, *row) for row in rows]
    return found


def participant_names(session: Session) -> list[str]:
    """The names of every study visit's participants (a job's session), for the personal-data
    gate: people this node knows."""
    names: list[str] = []
    for participants in session.scalars(select(StudyVisit.participant_names)):
        names += [name for name in participants or [] if isinstance(name, str)]
    return names


def mark_held(session: Session, practice_id: uuid.UUID, held: bool) -> None:
    """Whether the personal-data gate holds the practice's published version (the federation
    says so when it holds, releases or supersedes): while held, only signed-in users of this
    node see it; anonymous readers find it nowhere (not in lists, search, counts or by id)."""
    repository.set_held(session, practice_id, held)


async def organisations_records(
    session: AsyncSession,
    organisation_ids: Collection[uuid.UUID],
    records: Collection[tuple[str, uuid.UUID]],
) -> set[tuple[str, uuid.UUID]]:
    """Which of these records (`practice` or `study_visit`, by id) belong to one of the
    organisations: a practice whose responsible body it is, a study visit it organised."""
    practice_ids = {i for kind, i in records if kind == "practice"}
    visit_ids = {i for kind, i in records if kind == "study_visit"}
    owned = {
        ("practice", i)
        for i in await repository.responsible_for(session, organisation_ids, practice_ids)
    }
    if visit_ids and organisation_ids:
        wanted = {str(o) for o in organisation_ids}
        rows = await session.execute(
            select(StudyVisit.id, StudyVisit.organising_authority).where(
                StudyVisit.id.in_(visit_ids)
            )
        )
        owned |= {
            ("study_visit", visit_id)
            for visit_id, organiser in rows
            if str((organiser or {}).get("organisation_id")) in wanted
        }
    return owned
