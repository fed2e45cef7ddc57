"""The practice database's personal data, for data-subject requests and retention: the free
text of practices and study-visit reports (drafts and published alike), the participants and
authors of visits, and review comments.

A participant who is the person leaves the visit's list; a visit they wrote loses its author;
a comment they wrote loses its author's label; every mention in free text is replaced by
`REMOVED`. A changed practice or report gets a new version and its change topic, so search and
the federation's feed follow it (the federation republishes a shared one without the name).
Synchronous (run through `AsyncSession.run_sync`); never commits.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from node.core.db import utcnow
from node.core.privacy import (
    REMOVED,
    Erased,
    Matcher,
    Place,
    Retention,
    queue,
    scrub_fields,
    text_places,
    words_in,
)
from practices.models import Practice, PracticeOrganisation
from practices.study_visits.models import Recommendation, StudyVisit, StudyVisitComment
from practices.tasks import PRACTICE_CHANGED, STUDY_VISIT_CHANGED

PRACTICE_TEXT = (
    "title",
    "original_title",
    "summary",
    "description",
    "problem_addressed",
    "rationale",
    "translations",
    "staffing",
    "intensity_duration",
    "resources_funding",
    "outcomes",
    "sustainability",
    "transferability",
    "lessons_learned",
    "links",
    "withdrawn_reason",
)
VISIT_TEXT = (
    "title",
    "organising_authority",
    "host_organisations",
    "purpose",
    "programme",
    "delegation",
    "observations",
    "findings",
    "recommendations",
    "transferability",
    "addressed_to",
)
# What the practice database holds of a person (the record of processing reads it).
PERSONAL_DATA = {
    "study_visit": ("participant_names", "author_id"),
    "study_visit_comment": ("author_id", "author_label", "body"),
    "recommendation": ("text", "history"),
}
# A recommendation's words and the notes of its follow-up (the text travels with the report).
RECOMMENDATION_TEXT = ("text", "history")


@dataclass(frozen=True)
class Changed:
    """A practice or report whose text an erasure changed: the federation republishes it
    (when published) and purges the bodies that named the person."""

    record_type: str  # "practice" or "study_visit"
    id: uuid.UUID
    version: int
    published: bool


def find(session: Session, matcher: Matcher) -> list[Place]:
    """Every place of the practice database the person appears."""
    places: list[Place] = []
    for practice in session.scalars(select(Practice).order_by(Practice.title)):
        fields = {name: getattr(practice, name) for name in PRACTICE_TEXT}
        places += text_places(matcher, "practice", practice.id, fields)
    for link in session.scalars(select(PracticeOrganisation)):
        places += text_places(
            matcher, "practice_organisation", link.practice_id, {"name": link.name}
        )
    for visit in session.scalars(select(StudyVisit).order_by(StudyVisit.title)):
        fields = {name: getattr(visit, name) for name in VISIT_TEXT}
        places += text_places(matcher, "study_visit", visit.id, fields)
        for name in _participants(matcher, visit):
            value = {"study_visit": visit.title, "name": name, "end_date": str(visit.end_date)}
            places.append(
                Place("study_visit.participant", str(visit.id), "participant_names", value, (name,))
            )
        if visit.author_id in matcher.user_ids:
            value = {"study_visit": visit.title, "status": visit.status}
            places.append(Place("study_visit.author", str(visit.id), "author_id", value))
    for item in session.scalars(select(Recommendation).order_by(Recommendation.position)):
        fields = {name: getattr(item, name) for name in RECOMMENDATION_TEXT}
        places += text_places(matcher, "recommendation", item.id, fields)
    for comment in session.scalars(select(StudyVisitComment).order_by(StudyVisitComment.id)):
        found = words_in(matcher, [comment.author_label, comment.body])
        if found or comment.author_id in matcher.user_ids:
            value = {
                "study_visit_id": str(comment.study_visit_id),
                "author": comment.author_label,
                "body": comment.body,
                "at": comment.created_at.isoformat(),
            }
            places.append(Place("study_visit_comment", str(comment.id), "(comment)", value, found))
    return places


def _participants(matcher: Matcher, visit: StudyVisit) -> list[str]:
    return [
        name
        for name in visit.participant_names or []
        if isinstance(name, str) and matcher.spans(name)
    ]


def erase(session: Session, matcher: Matcher) -> tuple[Erased, list[Changed]]:
    """Remove the person from every practice and report (each changed one gets a new version
    and its change topic); returns the counts and the records changed."""
    erased, changed = Erased(), []
    touched: set[uuid.UUID] = set()
    for link in session.scalars(select(PracticeOrganisation)):
        if scrub_fields(matcher, link, ["name"]):
            touched.add(link.practice_id)
            erased.add("practice_organisation.name")
    for practice in session.scalars(select(Practice)):
        count = scrub_fields(matcher, practice, PRACTICE_TEXT)
        if count or practice.id in touched:
            erased.add("practice.text", count)
            practice.updated_at = utcnow()
            session.flush()
            changed.append(Changed("practice", practice.id, practice.version, _published(practice)))
            queue(session, PRACTICE_CHANGED, practice.id)
    reports: set[uuid.UUID] = set()  # whose recommendations named the person
    for item in session.scalars(select(Recommendation)):
        if scrub_fields(matcher, item, RECOMMENDATION_TEXT):
            reports.add(item.study_visit_id)
            erased.add("recommendation.text")
    for visit in session.scalars(select(StudyVisit)):
        count = scrub_fields(matcher, visit, VISIT_TEXT)
        participants = _participants(matcher, visit)
        if participants:
            visit.participant_names = [n for n in visit.participant_names if n not in participants]
            erased.add("study_visit.participant", len(participants))
        if visit.author_id in matcher.user_ids:
            visit.author_id = None
            erased.add("study_visit.author")
        if count:
            erased.add("study_visit.text", count)
        if count or participants or visit.id in reports:
            visit.updated_at = utcnow()
            session.flush()
            changed.append(Changed("study_visit", visit.id, visit.version, _published(visit)))
            queue(session, STUDY_VISIT_CHANGED, visit.id)
    for comment in session.scalars(select(StudyVisitComment)):
        mine = comment.author_id in matcher.user_ids or bool(matcher.spans(comment.author_label))
        if mine:
            comment.author_id, comment.author_label = None, REMOVED
            erased.add("study_visit_comment.author")
        erased.add("study_visit_comment.text", scrub_fields(matcher, comment, ["body"]) and 1)
    session.flush()
    return erased, changed


def _published(record: Practice | StudyVisit) -> bool:
    return record.status == "published"


def retain(session: Session, *, now: datetime, period: timedelta, dry_run: bool) -> Retention:
    """The participants of visits that ended more than `period` ago are removed from them (the
    report stays, and what it shares does not change: participants never travel); a period of
    0 keeps them for ever. With `dry_run`, only counted (participants, not visits)."""
    if not period:
        return Retention("study_visit.participant", period, 0)
    ended = select(StudyVisit.id, StudyVisit.participant_names).where(
        StudyVisit.end_date < (now - period).date()
    )
    rows = [(visit_id, names) for visit_id, names in session.execute(ended) if names]
    count = sum(len(names or []) for _, names in rows)
    if not dry_run and rows:
        # Not through the ORM: a participant list is not shared, so no new version is due.
        session.execute(
            update(StudyVisit)
            .where(StudyVisit.id.in_([visit_id for visit_id, _ in rows]))
            .values(participant_names=[])
            .execution_options(synchronize_session=False)
        )
    return Retention("study_visit.participant", period, count)


def forget_authors(session: Session, user_ids: list[uuid.UUID]) -> None:
    """Accounts retention removes: their comments keep what was said, not who said it."""
    if user_ids:
        session.execute(
            update(StudyVisitComment)
            .where(StudyVisitComment.author_id.in_(user_ids))
            .values(author_id=None, author_label=REMOVED)
            .execution_options(synchronize_session=False)
        )
