"""The practice database (practices, policies, tools, training kits, guides), study-visit
reports, and search over them."""

import uuid
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from practices.models import Practice
from practices.study_visits.models import StudyVisit
from practices.tasks import PRACTICE_CHANGED as PRACTICE_CHANGED
from practices.tasks import STUDY_VISIT_CHANGED as STUDY_VISIT_CHANGED
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


def participant_names(session: Session) -> list[str]:
    """The names of every study visit's participants (a job's session), for the personal-data
    gate: people this node knows."""
    names: list[str] = []
    for participants in session.scalars(select(StudyVisit.participant_names)):
        names += [name for name in participants or [] if isinstance(name, str)]
    return names
