"""Background work through the outbox, run by Celery.

A change that needs follow-up work (re-indexing a published practice, ...) writes an outbox row
in its own transaction. After the commit the work is done at once: in-process on the embedded
default, or by a Celery worker when a broker is configured. A periodic sweep (Celery beat, or
the node's own timer when embedded) picks up whatever a crash left pending. Handlers are
idempotent, so doing a message twice changes nothing.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from celery import Celery
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from node.db import create_sync_engine, utcnow
from node.models import OutboxMessage
from node.settings import Settings, get_settings

log = structlog.get_logger()
MAX_ATTEMPTS = 10
BATCH = 500


@dataclass
class JobContext:
    search: Any
    settings: Settings | None = None


Handler = Callable[[Session, str, JobContext], None]
# A topic says what changed; every domain that cares registers a handler for it.
HANDLERS: dict[str, list[Handler]] = {}


def handles(topic: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS.setdefault(topic, []).append(fn)
        return fn

    return register


def enqueue(session: AsyncSession, topic: str, entity_id: uuid.UUID | str) -> None:
    """Queue work in the caller's transaction: it exists exactly when the change does."""
    session.add(OutboxMessage(topic=topic, entity_id=str(entity_id)))
    session.info["outbox"] = True


def process_pending(session: Session, context: JobContext, *, limit: int = BATCH) -> int:
    """Do up to ``limit`` pending messages, oldest first; return how many were attempted."""
    _load_handlers()
    stmt = (
        select(OutboxMessage)
        .where(OutboxMessage.processed_at.is_(None))
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    messages = session.scalars(stmt).all()
    for message in messages:
        errors = []
        # Each handler in its own savepoint: one domain failing does not undo another's work.
        for handler in HANDLERS.get(message.topic, []):
            try:
                with session.begin_nested():
                    handler(session, message.entity_id, context)
            except Exception as exc:
                errors.append(f"{handler.__module__}: {type(exc).__name__}: {exc}")
        if not errors:
            message.processed_at = utcnow()
            continue
        message.attempts += 1
        message.last_error = "; ".join(errors)[:2000]
        log.warning(
            "outbox_failed",
            topic=message.topic,
            entity=message.entity_id,
            attempts=message.attempts,
            error=message.last_error,
        )
        if message.attempts >= MAX_ATTEMPTS:
            message.processed_at = utcnow()  # given up; the error stays on the row
    session.flush()
    return len(messages)


def drain(session: Session, context: JobContext) -> int:
    total = 0
    while (done := process_pending(session, context)) == BATCH:
        total += done
    return total + done


async def after_commit(session: AsyncSession, settings: Settings, context: JobContext) -> None:
    """Run or hand over the work queued by a transaction that has just committed."""
    if not session.info.pop("outbox", False):
        return
    if settings.broker_url:
        configure(settings)
        process_outbox.delay()
        return
    await session.run_sync(drain, context)
    await session.commit()


def _load_handlers() -> None:
    import federation.tasks  # noqa: F401 - registers the feed handlers
    import practices.tasks  # noqa: F401 - registers the search handlers


# --- Celery -------------------------------------------------------------------------------

celery = Celery("integra")
celery.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_time_limit=300,
    task_soft_time_limit=240,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)


def configure(settings: Settings) -> Celery:
    schedule: dict[str, Any] = {
        "outbox-sweep": {
            "task": "integra.outbox.process",
            "schedule": settings.outbox_sweep_interval.total_seconds(),
        }
    }
    # A hub pulls its nodes; a node pulls the hub it mirrors (nothing is due without one).
    schedule["hub-pull"] = {"task": "integra.hub.pull", "schedule": 10.0}
    celery.conf.update(broker_url=settings.broker_url, beat_schedule=schedule)
    return celery


@celery.task(name="integra.hub.pull")  # type: ignore[untyped-decorator]
def pull_nodes() -> list[int]:
    """Queue a pull of every due peer (a hub its nodes, a node the hub it mirrors; each peer's
    own backoff decides which are due): the worker pool runs them side by side."""
    from federation.hub import due_peers

    engine = create_sync_engine(get_settings().sqlalchemy_url)
    try:
        with Session(engine) as session:
            due = [peer.id for peer in due_peers(session)]
    finally:
        engine.dispose()
    for peer_id in due:  # a copy the workers did not reach before the next beat is dropped
        pull_peer.apply_async((peer_id,), expires=PULL_EXPIRES)
    return due


PULL_EXPIRES = 60  # seconds; beat queues the due peers again every 10


# Past the job's own limit (federation.hub.JOB_TIMEOUT, 10 minutes), which records a failure
# with backoff: these limits only stop a task stuck outside the job's checks.
@celery.task(name="integra.hub.pull_peer", soft_time_limit=660, time_limit=720)  # type: ignore[untyped-decorator]
def pull_peer(peer_id: int) -> str:
    """Pull one peer, then let the search index catch up. A peer already being pulled by
    another worker (a slow round outlasting the beat) is left to it."""
    from federation.hub import catch_up_index, sync_one
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


@celery.task(  # type: ignore[untyped-decorator]
    name="integra.outbox.process",
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def process_outbox() -> int:
    from practices.search import make_backend

    settings = get_settings()
    engine = create_sync_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            done = drain(session, JobContext(search=make_backend(settings), settings=settings))
            session.commit()
            return done
    finally:
        engine.dispose()


if get_settings().broker_url:  # a worker started with `celery -A node.jobs worker`
    configure(get_settings())
