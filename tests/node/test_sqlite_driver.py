"""The SQLite connection under the async engine (`node.core.sqlite`): a read-only transaction's
SELECTs run on the event loop's thread; writes, waits for a lock and reads marked `offloaded`
run in a worker thread, and the loop keeps answering meanwhile."""

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from node.core.db import create_engine, offloaded, read_only, session_factory, session_scope

pytestmark = pytest.mark.anyio


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")

    @event.listens_for(engine.sync_engine, "connect")
    def _thread_function(dbapi_connection: object, _record: object) -> None:
        # Which thread runs a statement: SQLite calls the function on the statement's thread.
        dbapi_connection.create_function("thread", 0, threading.get_ident)  # type: ignore[attr-defined]

    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)"))
        await connection.execute(text("INSERT INTO item VALUES (1, 'one')"))
    yield engine
    await engine.dispose()


async def test_reads_run_on_the_loop_and_writes_and_offloaded_reads_in_a_thread(
    engine: AsyncEngine,
) -> None:
    factory = session_factory(engine)
    loop_thread = threading.get_ident()
    async with session_scope(factory) as session:
        await read_only(session)
        assert await session.scalar(text("SELECT thread()")) == loop_thread
        with offloaded():
            assert await session.scalar(text("SELECT thread()")) != loop_thread
        assert await session.scalar(text("SELECT name FROM item WHERE id = 1")) == "one"
    async with session_scope(factory) as session:  # a writer: BEGIN IMMEDIATE
        assert await session.scalar(text("SELECT thread()")) != loop_thread
        await session.execute(text("INSERT INTO item VALUES (2, 'two')"))
    async with session_scope(factory) as session:
        await read_only(session)
        assert (await session.execute(text("SELECT count(*) FROM item"))).scalar() == 2


async def test_a_write_in_a_reading_transaction_goes_to_a_thread_and_commits(
    engine: AsyncEngine,
) -> None:
    factory = session_factory(engine)
    loop_thread = threading.get_ident()
    async with session_scope(factory) as session:
        await read_only(session)
        await session.execute(text("INSERT INTO item VALUES (3, 'three')"))
        assert await session.scalar(text("SELECT thread()")) != loop_thread  # from then on
    async with session_scope(factory) as session:
        await read_only(session)
        assert await session.scalar(text("SELECT name FROM item WHERE id = 3")) == "three"


async def test_errors_are_the_dialects_own_on_either_path(engine: AsyncEngine) -> None:
    factory = session_factory(engine)
    with pytest.raises(IntegrityError):
        async with session_scope(factory) as session:
            await session.execute(text("INSERT INTO item VALUES (1, 'again')"))
    with pytest.raises(Exception, match="no such table"):
        async with session_scope(factory) as session:
            await read_only(session)
            await session.execute(text("SELECT * FROM missing"))
    async with session_scope(factory) as session:  # the pool's connections still work
        await read_only(session)
        assert await session.scalar(text("SELECT name FROM item WHERE id = 1")) == "one"


async def test_a_writer_waiting_for_the_lock_leaves_the_loop_free(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "driver.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
    factory = session_factory(engine)

    async def write() -> None:
        async with session_scope(factory) as session:
            await session.execute(text("INSERT INTO item VALUES (4, 'four')"))

    writer = asyncio.create_task(write())
    ticks = 0
    while ticks < 5:  # the loop turns while the writer waits (busy_timeout, in its thread)
        await asyncio.sleep(0.02)
        ticks += 1
    assert not writer.done()
    async with session_scope(factory) as session:  # and readers are answered meanwhile
        await read_only(session)
        assert await session.scalar(text("SELECT count(*) FROM item")) == 1
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(writer, timeout=10)
    async with session_scope(factory) as session:
        await read_only(session)
        assert await session.scalar(text("SELECT name FROM item WHERE id = 4")) == "four"
