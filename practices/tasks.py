"""Outbox handlers of the practice database. Idempotent: running one twice changes nothing."""

import uuid
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from node.jobs import JobContext, handles
from practices.documents import index_document, load_views
from practices.models import Practice

SEARCH_TOPIC = "search.practice"


@handles(SEARCH_TOPIC)
def reindex_practice(session: Session, entity_id: str, context: JobContext) -> None:
    """Make the index agree with the practice as it is now: published → in it, else out."""
    practice_id = uuid.UUID(entity_id)
    practice = session.scalar(
        select(Practice)
        .options(selectinload(Practice.terms), selectinload(Practice.organisations))
        .where(Practice.id == practice_id)
    )
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
