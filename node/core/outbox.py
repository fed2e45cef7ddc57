"""Background work through the outbox.

A change that needs follow-up work (re-indexing a published practice, ...) writes an outbox row
in its own transaction. After the commit the work is done at once: in-process on the embedded
default (in a worker thread, off the event loop: the gate's scan of a long record must not stop
the server), or by a Celery worker when a broker is configured. A periodic sweep (Celery beat, or
the node's own timer when embedded) picks up whatever a crash left pending, after running the
periodic work the domains register with `@on_sweep` (the federation's feed reconciliation).
Handlers are idempotent, so doing a message twice changes nothing.

A message that fails `MAX_ATTEMPTS` times is kept as failed, with its last error: never done,
never dropped, counted by `failed_count` (readiness) and queued again by `retry`
(`integra jobs retry`). States, from the row: done (`processed_at` set), waiting (not done,
fewer attempts than the limit), failed (the limit reached).
"""

import asyncio
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import cache
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Engine, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from node.core.db import create_sync_engine, utcnow
from node.core.errors import Conflict, NotFound
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


Sweeper = Callable[[Session, JobContext], object]
# Periodic work the sweep runs before the outbox's own (each domain registers its own).
SWEEPERS: list[Sweeper] = []


def on_sweep(fn: Sweeper) -> Sweeper:
    """Run `fn` on every periodic sweep (at start, then every `outbox_sweep_interval`)."""
    SWEEPERS.append(fn)
    return fn


def is_failed() -> ColumnElement[bool]:
    # Also rows given up before failed work was kept (they were marked done as well).
    return OutboxMessage.attempts >= MAX_ATTEMPTS


def is_waiting() -> ColumnElement[bool]:
    return OutboxMessage.processed_at.is_(None) & (OutboxMessage.attempts < MAX_ATTEMPTS)


def enqueue(session: AsyncSession, topic: str, entity_id: uuid.UUID | str) -> None:
    """Queue work in the caller's transaction: it exists exactly when the change does."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    session.add(OutboxMessage(topic=topic, entity_id=str(entity_id), request_id=request_id))
    session.info["outbox"] = True


def process_pending(session: Session, context: JobContext, *, limit: int = BATCH) -> int:
    """Do up to ``limit`` pending messages, oldest first; return how many were attempted."""
    stmt = select(OutboxMessage).where(is_waiting()).order_by(OutboxMessage.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    if not HANDLERS:
        # Marking messages done with nobody to do them would lose work without a word.
        raise RuntimeError("no outbox handler is registered: import node.worker first")
    messages = session.scalars(stmt).all()
    outer = structlog.contextvars.get_contextvars().get("request_id")
    for message in messages:
        # The job's log events carry the id of the request that queued it.
        structlog.contextvars.bind_contextvars(request_id=message.request_id)
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
        # Past the limit the row stays, failed, with its error: no sweep takes it up again
        # until someone retries it.
        (log.error if message.attempts >= MAX_ATTEMPTS else log.warning)(
            "outbox_failed",
            id=message.id,
            topic=message.topic,
            entity=message.entity_id,
            attempts=message.attempts,
            gave_up=message.attempts >= MAX_ATTEMPTS,
            error=message.last_error,
        )
    structlog.contextvars.bind_contextvars(request_id=outer)
    session.flush()
    return len(messages)


def drain(session: Session, context: JobContext) -> int:
    total = 0
    while (done := process_pending(session, context)) == BATCH:
        total += done
    return total + done


def sweep(session: Session, context: JobContext) -> int:
    """The periodic sweep: every registered sweeper (each in its own savepoint: one failing
    stops neither the others nor the outbox), then the pending messages."""
    for sweeper in SWEEPERS:
        try:
            with session.begin_nested():
                sweeper(session, context)
        except Exception:
            log.exception("sweeper_failed", sweeper=f"{sweeper.__module__}.{sweeper.__name__}")
    return drain(session, context)


# --- failed work: counted, listed, retried ---------------------------------------------------


async def failed_count(session: AsyncSession) -> int:
    """How many messages failed every attempt and wait for `integra jobs retry`."""
    found = await session.scalar(select(func.count()).select_from(OutboxMessage).where(is_failed()))
    return int(found or 0)


def unfinished(session: Session, topics: Collection[str] | None = None) -> list[OutboxMessage]:
    """The messages not done (waiting or failed), oldest first, of these topics if given."""
    stmt = select(OutboxMessage).where(OutboxMessage.processed_at.is_(None) | is_failed())
    if topics is not None:
        stmt = stmt.where(OutboxMessage.topic.in_(topics))
    return list(session.scalars(stmt.order_by(OutboxMessage.id)))


def state_of(message: OutboxMessage) -> str:
    if message.attempts >= MAX_ATTEMPTS:
        return "failed"
    return "waiting" if message.processed_at is None else "done"


async def retry(session: AsyncSession, message_id: int | None = None) -> list[int]:
    """Queue failed work again (all of it, or one message) with a fresh count of attempts, to
    be done after the commit with whatever else is waiting; its last error stays until it
    runs. Returns the ids queued again."""
    if message_id is not None:
        message = await session.get(OutboxMessage, message_id)
        if message is None:
            raise NotFound(f"no job {message_id}")
        if state_of(message) != "failed":
            raise Conflict(f"job {message_id} is {state_of(message)}, not failed")
    stmt = select(OutboxMessage.id).where(is_failed())
    if message_id is not None:
        stmt = stmt.where(OutboxMessage.id == message_id)
    ids = list((await session.scalars(stmt)).all())
    if ids:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(attempts=0, processed_at=None)
            .execution_options(synchronize_session=False)
        )
    session.info["outbox"] = True  # done after the commit, as any other queued work
    return ids


async def after_commit(session: AsyncSession, settings: Settings, context: JobContext) -> None:
    """Run or hand over the work queued by a transaction that has just committed."""
    if not session.info.pop("outbox", False):
        return
    if settings.broker_url and _hand_over is not None:
        _hand_over(settings)
        return
    await drain_off_loop(session, context)


async def drain_off_loop(
    session: AsyncSession,
    context: JobContext,
    *,
    work: Callable[[Session, JobContext], int] = drain,
) -> int:
    """`drain` (or `work`, e.g. `sweep`) without holding up the event loop: in a worker thread
    with its own synchronous session, so the server keeps answering while a long record is
    scanned or signed. A session joined to a caller's connection (a test's rolled-back
    transaction) can only be drained on that connection: there, in the session's own context."""
    bind = session.bind
    if isinstance(bind, AsyncEngine):
        engine = _sync_engine(bind.url.render_as_string(hide_password=False))
        return await asyncio.to_thread(_drain_in_own_session, engine, context, work)
    done = await session.run_sync(work, context)
    await session.commit()
    return done


@cache
def _sync_engine(url: str) -> Engine:
    """One synchronous engine per database for the outbox's threads (it pools nothing)."""
    return create_sync_engine(url)


def _drain_in_own_session(
    engine: Engine, context: JobContext, work: Callable[[Session, JobContext], int]
) -> int:
    with Session(engine) as session:
        done = work(session, context)
        session.commit()
    return done


# Set by the composition root (node.worker): queues the outbox's processing on the broker.
_hand_over: Callable[[Settings], None] | None = None


def set_hand_over(fn: Callable[[Settings], None]) -> None:
    """Register how committed work reaches a worker when a broker is configured."""
    global _hand_over
    _hand_over = fn
