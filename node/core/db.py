"""Storage: the declarative base, engines for SQLite and PostgreSQL, the request session."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, event, make_url
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import NullPool
from sqlalchemy.types import JSON, TypeDecorator

from node.core import sqlite
from node.core.settings import sync_url

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


def sync_collection(
    collection: list[Any], wanted: list[Any], key: Callable[[Any], Any], make: Callable[[Any], Any]
) -> bool:
    """Make a child collection hold exactly ``wanted`` keys by removing and adding rows, never
    by replacing the list: a replaced list inserts the new rows before deleting the old, which
    a unique constraint refuses when a key stays. Returns whether anything changed."""
    wanted_keys = list(dict.fromkeys(wanted))
    present = {key(item): item for item in collection}
    changed = False
    for item_key, item in present.items():
        if item_key not in wanted_keys:
            collection.remove(item)
            changed = True
    for item_key in wanted_keys:
        if item_key not in present:
            collection.append(make(item_key))
            changed = True
    return changed


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


SQLITE_MMAP = 1 << 30  # bytes of the database file mapped (beyond them, read as before)


def _sqlite_pragmas(engine: Engine) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT and deferred BEGIN; take it over
    # (the recipe in SQLAlchemy's SQLite dialect documentation).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        # Deleted content overwritten with zeros: a purged text leaves no copy in free space.
        cursor.execute("PRAGMA secure_delete=ON")
        # Pages read from the file's mapping, shared by every connection and worker process,
        # not copied by a read() into each connection's small cache of its own: a list of
        # organisations built anew, 4.0 -> 3.5 ms of CPU (the registry's rows are scattered).
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE: take the write lock up front, so a transaction that reads then writes
        # waits for busy_timeout instead of failing with SQLITE_BUSY when another wrote first.
        # Read-only requests need no lock at all (WAL readers never block): plain BEGIN.
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


READ_ONLY = "integra_read_only"


async def read_only(session: AsyncSession) -> None:
    """Mark a session as a reader: on SQLite it takes no write lock. What it would write
    (the audit of a read, say) goes through `defer_write` into a short writing transaction."""
    session.info[READ_ONLY] = True
    await session.connection(execution_options={READ_ONLY: True})


@contextmanager
def offloaded() -> Iterator[None]:
    """Statements in this block run in a worker thread even when they only read: for a read
    that may take long (a full-text match, loading a cache), which on SQLite would otherwise
    hold the event loop (see `node.core.sqlite`). Elsewhere it changes nothing."""
    token = sqlite.OFFLOAD.set(True)
    try:
        yield
    finally:
        sqlite.OFFLOAD.reset(token)


def defer_write(session: AsyncSession, write: Callable[[AsyncSession], Awaitable[None]]) -> bool:
    """In a reading session, keep ``write`` for the writing transaction that follows it."""
    if not session.info.get(READ_ONLY):
        return False
    session.info.setdefault("deferred_writes", []).append(write)
    return True


def create_engine(
    url: str, *, pooled: bool = True, pool_size: int = 5, pool_overflow: int = 10
) -> AsyncEngine:
    """An engine for the event loop. Pooled: ``pool_size`` connections kept open (a connection
    opened per request costs PostgreSQL a process start), ``pool_overflow`` more opened when
    needed and closed after."""
    kwargs: dict[str, Any] = (
        {"pool_size": pool_size, "max_overflow": pool_overflow}
        if pooled
        else {"poolclass": NullPool}
    )
    if make_url(url).drivername == "sqlite+aiosqlite":
        # The same dialect over our own connection: a quick read runs with no thread hop.
        kwargs["async_creator"] = sqlite.creator(
            lambda: engine.sync_engine.dialect.create_connect_args(engine.sync_engine.url)
        )
    # An error's message never carries the statement's parameters (record text, e-mails).
    engine = create_async_engine(url, hide_parameters=True, **kwargs)
    if engine.dialect.name == "sqlite":
        _sqlite_pragmas(engine.sync_engine)
    return engine


def create_sync_engine(url: str) -> Engine:
    """The same database for synchronous code (Celery tasks)."""
    engine = sa_create_engine(sync_url(url), poolclass=NullPool, hide_parameters=True)
    if engine.dialect.name == "sqlite":
        _sqlite_pragmas(engine)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit when the caller succeeds, roll back when it raises."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
