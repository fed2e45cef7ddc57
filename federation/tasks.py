"""Outbox handlers that keep this node's feed in step with its published records (the work is
in federation.publish, through federation.reconcile), the reconciliation run by every periodic
sweep, and the periodic pulls of the federation's peers.
"""

import uuid
from typing import Any

import structlog
from celery import shared_task
from sqlalchemy.orm import Session

from federation import reconcile
from federation.feed import FederationNotConfigured
from federation.redaction import redact_record
from node.core.db import create_sync_engine
from node.core.outbox import JobContext, handles, on_sweep
from node.core.settings import get_settings
from practices import (
    PRACTICE_CHANGED,
    PRACTICE_CORRECTED,
    PRACTICE_LEAKED,
    STUDY_VISIT_CHANGED,
    STUDY_VISIT_LEAKED,
    published_practice,
)


@handles(PRACTICE_CHANGED)
def feed_practice(session: Session, entity_id: str, context: JobContext) -> None:
    reconcile.bring_in_step(session, context.settings, "practice", uuid.UUID(entity_id))


@handles(STUDY_VISIT_CHANGED)
def feed_study_visit(session: Session, entity_id: str, context: JobContext) -> None:
    reconcile.bring_in_step(session, context.settings, "study_visit", uuid.UUID(entity_id))


@handles(PRACTICE_LEAKED)
def redact_leaked_practice(session: Session, entity_id: str, context: JobContext) -> None:
    """Withdrawn for personal data: every earlier body of it purged wherever it travelled."""
    redact_record(session, context.settings, "practice", uuid.UUID(entity_id), "personal_data")


@handles(STUDY_VISIT_LEAKED)
def redact_leaked_study_visit(session: Session, entity_id: str, context: JobContext) -> None:
    """A report withdrawn for personal data: every earlier body purged wherever it travelled."""
    redact_record(session, context.settings, "study_visit", uuid.UUID(entity_id), "personal_data")


@handles(PRACTICE_CORRECTED)
def redact_corrected_practice(session: Session, entity_id: str, context: JobContext) -> None:
    """Corrected because it leaked: the bodies of its earlier versions purged."""
    local_id = uuid.UUID(entity_id)
    version = published_practice(session, local_id).version  # locked, as the feed's job does
    redact_record(session, context.settings, "practice", local_id, "correction", below=version)


@on_sweep
def reconcile_feed(session: Session, context: JobContext) -> None:
    """At start and on every sweep: whatever a job could not do (no key yet, work given up),
    the feed catches up with (a batch per sweep)."""
    if context.settings is None or not context.settings.country:
        return  # federation is not set up on this node: nothing travels
    try:
        reconcile.reconcile(session, context.settings)
    except FederationNotConfigured as exc:
        structlog.get_logger().warning("feed_not_reconciled", reason=str(exc))


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
    from federation.redaction import scrub
    from federation.sync import sync_one
    from practices.search import make_backend

    settings = get_settings()
    engine = create_sync_engine(settings.sqlalchemy_url)
    sessions = lambda: Session(engine)  # noqa: E731
    try:
        result = sync_one(sessions, peer_id, interval=settings.hub_sync_interval, settings=settings)
        catch_up_index(sessions, make_backend(settings))
        if getattr(result, "redactions", 0):
            scrub(engine)  # no trace of what the redactions purged
    finally:
        engine.dispose()
    return "being pulled by another worker" if result is None else str(result)
