"""This node's study-visit reports in the search index: what the index sees of a report
(`practices.search.visits.visit_document`), kept in step with every change, and the reports as
search hits.

Every change to a report queues `STUDY_VISIT_CHANGED` (publish, edit, scope, withdrawal,
erasure, import): its handler here makes the index agree with the report as committed,
published → in it, else out, as the practices' handler does. A periodic sweep (at start, then
every `outbox_sweep_interval`) brings the SQL index back in line with the published reports
when something emptied it (a rebuild after a new analysis, `integra search reindex`, an
upgrade from a version that did not index reports): the reports missing are indexed, those
no longer published removed.
"""

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from node.core.outbox import JobContext, handles, on_sweep
from practices.models import Practice
from practices.search.models import SearchDocument, SearchFacet
from practices.search.port import IndexDocument
from practices.search.text import QueryTerms, snippet
from practices.search.visits import SOURCE, STUDY_VISIT, RecordHit, visit_document
from practices.study_visits.models import Recommendation, StudyVisit
from practices.tasks import STUDY_VISIT_CHANGED

BATCH = 500


def document_of(session: Session, visit: StudyVisit) -> IndexDocument:
    """A published report as the index sees it: its recommendation items' texts and the
    titles of the practices it observed (those still published) read here."""
    items = session.scalars(
        select(Recommendation.text)
        .where(Recommendation.study_visit_id == visit.id)
        .order_by(Recommendation.position)
    ).all()
    observed: list[tuple[str, str]] = []
    wanted = []
    for value in visit.observed_practice_ids or []:
        try:
            wanted.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    if wanted:
        rows = session.execute(
            select(Practice.language, Practice.title).where(
                Practice.id.in_(wanted), Practice.status == "published"
            )
        )
        observed = [(language, title) for language, title in rows]
    return visit_document(visit, recommendations=list(items), observed=observed)


@handles(STUDY_VISIT_CHANGED)
def reindex_visit(session: Session, entity_id: str, context: JobContext) -> None:
    """Make the index agree with the report as committed: published → in it, else out."""
    if context.search is None:
        return
    visit_id = uuid.UUID(entity_id)
    visit = session.get(StudyVisit, visit_id, populate_existing=True)
    if visit is None or visit.status != "published":
        context.search.remove(session, [visit_id])
        return
    context.search.upsert(session, [document_of(session, visit)])


def reindex_visits(session: Session, search: Any, ids: list[uuid.UUID] | None = None) -> int:
    """Index these published reports (all of them: None), a batch at a time."""
    stmt = select(StudyVisit).where(StudyVisit.status == "published").order_by(StudyVisit.id)
    if ids is not None:
        stmt = stmt.where(StudyVisit.id.in_(ids))
    visits = list(session.scalars(stmt))
    for start in range(0, len(visits), BATCH):
        search.upsert(session, [document_of(session, v) for v in visits[start : start + BATCH]])
    return len(visits)


def indexed_visit_ids(session: Session) -> set[uuid.UUID]:
    """The reports the SQL index holds (active documents of the reports' source)."""
    rows = session.scalars(
        select(SearchDocument.record_id)
        .join(SearchFacet, SearchFacet.doc_no == SearchDocument.doc_no)
        .where(SearchFacet.facet == "source", SearchFacet.value == SOURCE, SearchDocument.active)
    )
    return set(rows)


@on_sweep
def catch_up_visits(session: Session, context: JobContext) -> tuple[int, int]:
    """The SQL index brought in line with the published reports: (indexed, removed). Two
    reads of ids when nothing is missing. (Meilisearch keeps what it was given: its index is
    rebuilt by `integra search reindex`, which the handler's work then completes.)"""
    search = context.search
    if search is None or getattr(search, "name", None) != "sql":
        return 0, 0
    published = set(session.scalars(select(StudyVisit.id).where(StudyVisit.status == "published")))
    indexed = indexed_visit_ids(session)
    missing, stale = published - indexed, indexed - published
    if stale:
        search.remove(session, sorted(stale))
    done = reindex_visits(session, search, sorted(missing)) if missing else 0
    return done, len(stale)


class LocalVisits:
    """This node's published study-visit reports, as search hits."""

    name = SOURCE

    async def hits(
        self, session: AsyncSession, record_ids: list[uuid.UUID], terms: QueryTerms
    ) -> dict[uuid.UUID, RecordHit]:
        if not record_ids:
            return {}
        rows = await session.scalars(
            select(StudyVisit).where(
                StudyVisit.id.in_(record_ids), StudyVisit.status == "published"
            )
        )
        return {v.id: visit_hit(v, terms) for v in rows}


def visit_hit(visit: StudyVisit, terms: QueryTerms) -> RecordHit:
    text = " ".join(t for t in (visit.purpose, visit.findings, visit.recommendations) if t)
    return RecordHit.model_construct(
        type=STUDY_VISIT,
        id=visit.id,
        title=visit.title,
        kind=STUDY_VISIT,
        country=visit.host_country,
        language=visit.language,
        summary=visit.purpose,
        snippet=snippet(text, terms),
        published_at=visit.published_at,
        start_date=visit.start_date,
        held=False,
        link=f"/study-visits/{visit.id}",
    )


LOCAL_VISITS = LocalVisits()
