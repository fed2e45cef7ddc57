"""Background work through the outbox.

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
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from node.core.db import utcnow
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
    await session.run_sync(drain, context)
    await session.commit()


# Set by the composition root (node.worker): queues the outbox's processing on the broker.
_hand_over: Callable[[Settings], None] | None = None


def set_hand_over(fn: Callable[[Settings], None]) -> None:
    """Register how committed work reaches a worker when a broker is configured."""
    global _hand_over
    _hand_over = fn
