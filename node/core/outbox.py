"""Background work through the outbox.

A change that needs follow-up work (re-indexing a published practice, ...) writes an outbox row
in its own transaction. After the commit the work is done at once: in-process on the embedded
default (in a worker thread, off the event loop: the gate's scan of a long record must not stop
the server), or by a Celery worker when a broker is configured. A periodic sweep (Celery beat, or
the node's own timer when embedded) picks up whatever a crash left pending. Handlers are
idempotent, so doing a message twice changes nothing.
"""

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import structlog
from sqlalchemy import Engine, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from node.core.db import create_sync_engine, utcnow
from node.core.models import OutboxMessage
from node.core.settings import Settings

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
    stmt = (
        select(OutboxMessage)
        .where(OutboxMessage.processed_at.is_(None))
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    if not HANDLERS:
        # Marking messages done with nobody to do them would lose work without a word.
        raise RuntimeError("no outbox handler is registered: import node.worker first")
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
    if settings.broker_url and _hand_over is not None:
        _hand_over(settings)
        return
    await drain_off_loop(session, context)


async def drain_off_loop(session: AsyncSession, context: JobContext) -> int:
    """`drain` without holding up the event loop: in a worker thread with its own synchronous
    session, so the server keeps answering while a long record is scanned or signed. A session
    joined to a caller's connection (a test's rolled-back transaction) can only be drained on
    that connection: there, in the session's own context."""
    bind = session.bind
    if isinstance(bind, AsyncEngine):
        engine = _sync_engine(bind.url.render_as_string(hide_password=False))
        return await asyncio.to_thread(_drain_in_own_session, engine, context)
    done = await session.run_sync(drain, context)
    await session.commit()
    return done


@cache
def _sync_engine(url: str) -> Engine:
    """One synchronous engine per database for the outbox's threads (it pools nothing)."""
    return create_sync_engine(url)


def _drain_in_own_session(engine: Engine, context: JobContext) -> int:
    with Session(engine) as session:
        done = drain(session, context)
        session.commit()
    return done


# Set by the composition root (node.worker): queues the outbox's processing on the broker.
_hand_over: Callable[[Settings], None] | None = None


def set_hand_over(fn: Callable[[Settings], None]) -> None:
    """Register how committed work reaches a worker when a broker is configured."""
    global _hand_over
    _hand_over = fn
