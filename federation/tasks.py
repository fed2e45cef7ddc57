"""Outbox handlers that keep this node's feed in step with its published records (the work is
in federation.publish), and the periodic pulls of the federation's peers.
"""

import uuid
from functools import partial
from typing import Any

from celery import shared_task
from sqlalchemy.orm import Session

from federation.publish import practice_body, publish, study_visit_body
from node.core.db import create_sync_engine
from node.core.outbox import JobContext, handles
from node.core.settings import get_settings
from practices import (
    PRACTICE_CHANGED,
    STUDY_VISIT_CHANGED,
    published_practice,
    published_visit,
)


@handles(PRACTICE_CHANGED)
def feed_practice(session: Session, entity_id: str, context: JobContext) -> None:
    local_id = uuid.UUID(entity_id)
    current = published_practice(session, local_id)
    published = current.published
    body = partial(practice_body, session, published) if published is not None else None
    publish(session, context.settings, "practice", local_id, current.version, body)


@handles(STUDY_VISIT_CHANGED)
def feed_study_visit(session: Session, entity_id: str, context: JobContext) -> None:
    local_id = uuid.UUID(entity_id)
    current = published_visit(session, local_id)
    origin = context.settings.country if context.settings else None
    body = None
    if current.published is not None and origin:
        body = partial(study_visit_body, session, current.published, origin)
    publish(session, context.settings, "study_visit", local_id, current.version, body)


# --- periodic pulls, run by the Celery worker (node.worker) -------------------------------

PULL_EXPIRES = 60  # seconds; beat queues the due peers again every 10
# A hub pulls its nodes; a node pulls the hub it mirrors (nothing is due without one).
SCHEDULE: dict[str, dict[str, Any]] = {
    "hub-pull": {"task": "integra.hub.pull", "schedule": 10.0},
}


@shared_task(name="integra.hub.pull")  # type: ignore[untyped-decorator]
def pull_nodes() -> list[int]:
    """Queue a pull of every due peer (a hub its nodes, a node the hub it mirrors; each peer's
    own backoff decides which are due): the worker pool runs them side by side."""
    from federation.sync import due_peers

    engine = create_sync_engine(get_settings().sqlalchemy_url)
    try:
        with Session(engine) as session:
            due = [peer.id for peer in due_peers(session)]
    finally:
        engine.dispose()
    for peer_id in due:  # a copy the workers did not reach before the next beat is dropped
        pull_peer.apply_async((peer_id,), expires=PULL_EXPIRES)
    return due


# Past the job's own limit (federation.sync.JOB_TIMEOUT, 10 minutes), which records a failure
# with backoff: these limits only stop a task stuck outside the job's checks.
@shared_task(name="integra.hub.pull_peer", soft_time_limit=660, time_limit=720)  # type: ignore[untyped-decorator]
def pull_peer(peer_id: int) -> str:
    """Pull one peer, then let the search index catch up. A peer already being pulled by
    another worker (a slow round outlasting the beat) is left to it."""
    from federation.pool import catch_up_index
    from federation.sync import sync_one
    from practices.search import make_backend

    settings = get_settings()
    engine = create_sync_engine(settings.sqlalchemy_url)
    sessions = lambda: Session(engine)  # noqa: E731
    try:
        result = sync_one(sessions, peer_id, interval=settings.hub_sync_interval, settings=settings)
        catch_up_index(sessions, make_backend(settings))
    finally:
        engine.dispose()
    return "being pulled by another worker" if result is None else str(result)
