"""Outbox handlers of the practice database. Idempotent: running one twice changes nothing."""

import uuid
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from node.core.outbox import JobContext, handles
from practices.documents import index_document, load_views
from practices.models import Practice

# What changed, for every domain that reacts (search here; the federation feed too).
PRACTICE_CHANGED = "practice.changed"
STUDY_VISIT_CHANGED = "study_visit.changed"
# A practice withdrawn for personal data (every earlier body of it to be purged wherever it
# travelled), and one corrected because it leaked (the bodies of its earlier versions): the
# federation reacts with a signed redaction.
PRACTICE_LEAKED = "practice.leaked"
STUDY_VISIT_LEAKED = "study_visit.leaked"  # withdrawn for personal data: bodies purged
PRACTICE_CORRECTED = "practice.corrected"


def locked_practice(session: Session, practice_id: uuid.UUID) -> Practice | None:
    """The practice as last committed, its row locked until this job's transaction ends.

    Handlers for the same practice then run one after the other, each reading the status the
    previous one left: a publish and a withdrawal handled at the same moment cannot cross, so
    the index and the feed always end on the committed state.
    """
    return session.scalar(
        select(Practice)
        .options(selectinload(Practice.terms), selectinload(Practice.organisations))
        .where(Practice.id == practice_id)
        .with_for_update(of=Practice)
        .execution_options(populate_existing=True)
    )


@handles(PRACTICE_CHANGED)
def reindex_practice(session: Session, entity_id: str, context: JobContext) -> None:
    """Make the index agree with the practice as it is now: published → in it, else out."""
    practice_id = uuid.UUID(entity_id)
    practice = locked_practice(session, practice_id)
    if practice is None or practice.status != "published":
        context.search.remove(session, [practice_id])
        return
    context.search.upsert(session, [index_document(session, practice)])


def reindex_all(
    session: Session, context: JobContext, progress: Callable[[int], None] | None = None
) -> int:
    """Rebuild the whole index from the database (`integra search reindex`)."""
    context.search.clear(session)
    ids = session.scalars(
        select(Practice.id).where(Practice.status == "published").order_by(Practice.id)
    ).all()
    for start in range(0, len(ids), BATCH):
        chunk = list(ids[start : start + BATCH])
        context.search.upsert(
            session, [index_document(session, p) for p in load_views(session, chunk)]
        )
        if progress is not None:
            progress(len(chunk))
    return len(ids)


BATCH = 2000
