"""SQLite for the async engine with no thread hop for a quick read.

SQLAlchemy's `aiosqlite` dialect drives each connection through aiosqlite, which runs every
call in the connection's own thread: four hops per statement (open a cursor, execute, fetch,
close), each a wake-up of the event loop and a wait for the GIL. A read of an indexed row takes
microseconds; the hops took milliseconds under load and were most of a request's cost.

This is a stand-in for aiosqlite's connection, given to the same dialect (`async_creator`),
over the standard `sqlite3` module:

- in a read-only transaction (a plain `BEGIN`: see `node.core.db.read_only`), a `SELECT` runs
  at once on the event loop's thread: a WAL reader takes no lock and never waits;
- everything else (`BEGIN IMMEDIATE` and a writing transaction's statements, whose lock may
  wait up to `busy_timeout`, a commit that syncs the log, connecting, a statement outside any
  transaction) runs in the connection's own thread, as with aiosqlite;
- so does a read that may be long (a full-text match, loading the search cache): the caller
  marks it with `node.core.db.offloaded()`.
"""

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

# Set (by `node.core.db.offloaded`) around reads that may take long: they go to a thread.
OFFLOAD: ContextVar[bool] = ContextVar("integra_sqlite_offload", default=False)


class _AtOnce:
    """aiosqlite's queue of calls for its thread, as SQLAlchemy's dialect uses it (to set the
    isolation level): the call runs at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as error:  # handed to whoever awaits the future
            future.set_exception(error)


class Connection:
    """What SQLAlchemy's aiosqlite dialect asks of an aiosqlite connection. What runs in a
    thread runs in the connection's own one, in order, as aiosqlite does: never two calls on
    the connection at once, even when the request that made one was cancelled meanwhile."""

    def __init__(self, connection: sqlite3.Connection, thread: ThreadPoolExecutor) -> None:
        self._conn: sqlite3.Connection | None = connection
        self._thread = thread
        self._last: Future[Any] | None = None  # the latest call handed to the thread
        self._tx = _AtOnce()
        # In a transaction opened by a plain BEGIN that has run nothing but SELECTs.
        self._reading = False

    @property
    def _connection(self) -> sqlite3.Connection | None:  # truthy while open (the dialect asks)
        return self._conn

    @property
    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("no active connection")
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._open.isolation_level

    @property
    def in_transaction(self) -> bool:
        return self._open.in_transaction

    def cursor(self) -> "_CursorOpening":
        return _CursorOpening(self)

    def _idle(self) -> bool:
        """Nothing of this connection's is running in its thread."""
        return self._last is None or self._last.done()

    def _quick(self) -> bool:
        return self._reading and not OFFLOAD.get() and self._idle()

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        self._last = self._thread.submit(function, *args)
        return await asyncio.wrap_future(self._last)

    async def _end(self, ending: Callable[[], None]) -> None:
        quick = self._idle() and (self._reading or not self._open.in_transaction)
        self._reading = False
        if quick:
            ending()
        else:
            await self._in_thread(ending)

    async def commit(self) -> None:
        await self._end(self._open.commit)

    async def rollback(self) -> None:
        if self._conn is not None:
            await self._end(self._conn.rollback)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._open.create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._conn is not None:
            connection, self._conn = self._conn, None
            await self._in_thread(connection.close)
            self._thread.shutdown(wait=False)

    def stop(self) -> None:
        if self._conn is not None:
            connection, self._conn = self._conn, None
            self._thread.submit(connection.close)
            self._thread.shutdown(wait=False)


class _CursorOpening:
    """`connection.cursor()`: entered with `async with`, as aiosqlite's is."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def __aenter__(self) -> "Cursor":
        return Cursor(self._connection, self._connection._open.cursor())

    async def __aexit__(self, *_: object) -> None:
        return None


class Cursor:
    def __init__(self, connection: Connection, cursor: sqlite3.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor
        self._quick = False  # the last statement ran on the loop's thread: fetch there too
        self.arraysize = cursor.arraysize

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    async def execute(self, sql: str, parameters: Any = ()) -> "Cursor":
        connection = self._connection
        if sql[:5].upper() == "BEGIN":
            # A plain (deferred) BEGIN takes no lock and waits for none; IMMEDIATE may wait.
            connection._reading = sql.strip().upper() == "BEGIN"
            self._quick = connection._reading and connection._idle()
        else:
            if connection._reading and sql.lstrip()[:6].upper() != "SELECT":
                connection._reading = False  # a write: its lock may wait; from now on, a thread
            self._quick = connection._quick()
        if self._quick:
            self._cursor.execute(sql, parameters)
        else:
            await connection._in_thread(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> "Cursor":
        self._connection._reading = False
        self._quick = False
        await self._connection._in_thread(self._cursor.executemany, sql, parameters)
        return self

    async def fetchall(self) -> Sequence[Any]:
        if self._quick:
            return self._cursor.fetchall()
        return await self._connection._in_thread(self._cursor.fetchall)

    async def fetchone(self) -> Any:
        if self._quick:
            return self._cursor.fetchone()
        return await self._connection._in_thread(self._cursor.fetchone)

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        size = self.arraysize if size is None else size
        if self._quick:
            return self._cursor.fetchmany(size)
        return await self._connection._in_thread(self._cursor.fetchmany, size)

    async def close(self) -> None:
        if self._connection._idle():
            self._cursor.close()
        else:
            await self._connection._in_thread(self._cursor.close)

    async def setinputsizes(self, *sizes: Any) -> None:
        return None


def creator(arguments: Callable[[], tuple[Sequence[Any], Mapping[str, Any]]]) -> Any:
    """An `async_creator` for `create_async_engine`: ``arguments`` gives the dialect's connect
    arguments for the engine's URL (the engine is built after its creator)."""

    async def connect() -> Connection:
        args, kwargs = arguments()
        kwargs = {**kwargs, "check_same_thread": False}  # its thread, or the event loop's
        thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite")
        opening = asyncio.wrap_future(thread.submit(sqlite3.connect, *args, **kwargs))
        try:
            return Connection(await opening, thread)
        except BaseException:
            thread.shutdown(wait=False)
            raise

    return connect
