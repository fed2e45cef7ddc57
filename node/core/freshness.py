"""Whether a kept answer is still fresh, read on a driver connection of its own.

`node.core.answers.KeptRoutes` serves a kept answer only once the statements it was kept under
(change counters, an index's sequence number) read the same values again. That read comes
before every answer it serves, so it must cost little: through SQLAlchemy's pool, with a
transaction begun and ended around one indexed row, it cost more than the rest of the answer
(PostgreSQL: 0.8 ms of CPU of the 1.4 ms a kept search took). Here the same statement, compiled
once when the answer is kept, runs on one connection per process held open for it:

- **PostgreSQL**: psycopg in autocommit: one round trip, no BEGIN or ROLLBACK; the statement
  is prepared by the server after its first uses.
- **SQLite**: the standard `sqlite3` module on the event loop's thread, outside any
  transaction: a single SELECT reads one snapshot of a WAL database and takes no lock. The
  connection may only read (`query_only`) and never waits for one (`busy_timeout` 0).

A connection that fails is closed and left alone for a moment; meanwhile, and for any error,
the answer is not served from what was kept: the routes answer (and say so if the database is
out of reach).
"""

import asyncio
import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

# After a failure, the routes answer alone for this long before the connection is tried again.
PAUSE = 1.0


class Compiled:
    """A statement as its driver takes it: SQL text and parameters."""

    __slots__ = ("dialect", "params", "sql")

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        values = compiled.construct_params()
        for name, value in list(values.items()):
            process = compiled.binds[name].type.bind_processor(dialect)
            if process is not None:
                values[name] = process(value)
        self.dialect = dialect
        self.sql = compiled.string
        positions = compiled.positiontup
        self.params: tuple[Any, ...] | Mapping[str, Any] = (
            tuple(values[name] for name in positions) if positions is not None else values
        )


class _Round:
    """One pipeline of statements, for the readers who asked before it started."""

    __slots__ = ("rows", "statements")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.statements: dict[str, Compiled] = {}
        self.rows: asyncio.Future[dict[str, tuple[Any, ...]]] = loop.create_future()


class Rereader:
    """One process's connection for reading kept answers' statements again, for one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.name = engine.dialect.name
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None  # psycopg.AsyncConnection
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next: _Round | None = None  # the round new readers join
        self._rounds: asyncio.Task[None] | None = None  # the task running the rounds
        self._paused_until = 0.0
        event.listen(engine.sync_engine, "engine_disposed", self.close)

    @classmethod
    def usable(cls, engine: AsyncEngine) -> bool:
        """A database this reader can reach on its own: PostgreSQL, or an SQLite file."""
        if engine.dialect.name == "postgresql":
            return engine.dialect.driver == "psycopg"
        database = engine.url.database
        return engine.dialect.name == "sqlite" and bool(database) and database != ":memory:"

    def compiled(self, statement: Select[Any]) -> Compiled:
        return Compiled(statement, self.dialect)

    async def read(self, statement: Compiled) -> tuple[Any, ...] | None:
        """The row the statement reads now; None when it cannot be read here (the caller then
        leaves the answer to the routes)."""
        if time.monotonic() < self._paused_until:
            return None
        try:
            if self.name == "sqlite":
                return self._read_sqlite(statement)
            return await self._read_postgres(statement)
        except Exception:
            self.close()
            self._paused_until = time.monotonic() + PAUSE
            return None

    def _read_sqlite(self, statement: Compiled) -> tuple[Any, ...]:
        if self._sqlite is None:
            connection = sqlite3.connect(
                str(self.engine.url.database),
                isolation_level=None,  # autocommit: the SELECT is its own read transaction
                check_same_thread=False,  # only ever used from the event loop's thread
                timeout=0,
            )
            connection.execute("PRAGMA query_only=ON")
            self._sqlite = connection
        row = self._sqlite.execute(statement.sql, statement.params).fetchone()
        return tuple(row)

    async def _read_postgres(self, statement: Compiled) -> tuple[Any, ...]:
        """Read in the next round: readers arriving while one round is on the wire join the
        next one, which starts after they arrived (so it sees every commit made before) and
        reads every statement they asked for in one pipeline, one round trip. Under load one
        connection serves them all, and the database reads each statement once a round."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # made in another event loop (a test's): of no use here
            self.close()
            self._loop, self._next, self._rounds = loop, None, None
        round_ = self._next
        if round_ is None:
            round_ = self._next = _Round(loop)
        round_.statements.setdefault(statement.sql, statement)
        if self._rounds is None or self._rounds.done():
            self._rounds = loop.create_task(self._run_rounds())
        # Shielded: a reader that goes away (its client hung up) leaves the round to the others.
        rows = await asyncio.shield(round_.rows)
        return rows[statement.sql]

    async def _run_rounds(self) -> None:
        while (round_ := self._next) is not None:
            self._next = None  # from now on, a new reader waits for the round after this one
            try:
                connection = await self._connection()
                statements = list(round_.statements.values())
                if len(statements) == 1:  # no pipeline to open and sync
                    cursors = [await connection.execute(statements[0].sql, statements[0].params)]
                else:
                    async with connection.pipeline():
                        cursors = [await connection.execute(s.sql, s.params) for s in statements]
                rows = {
                    s.sql: tuple(await c.fetchone())
                    for s, c in zip(statements, cursors, strict=True)
                }
            except Exception as error:
                self.close()
                round_.rows.set_exception(error)
                round_.rows.exception()  # retrieved here: no "never retrieved" warning
            else:
                round_.rows.set_result(rows)

    async def _connection(self) -> Any:
        if self._pg is None:
            import psycopg

            url = self.engine.url.set(drivername="postgresql")
            self._pg = await psycopg.AsyncConnection.connect(
                url.render_as_string(hide_password=False), autocommit=True, connect_timeout=5
            )
        return self._pg

    def close(self, *_: object) -> None:
        """Close the connection (the reader opens another if asked again): also when the
        engine's pool is disposed (`AsyncEngine.dispose`: at shutdown, or a test's end)."""
        sqlite_connection, self._sqlite = self._sqlite, None
        if sqlite_connection is not None:
            sqlite_connection.close()
        pg, self._pg = self._pg, None
        if pg is not None:
            pg.pgconn.finish()  # at once, from any thread: no round trip to say goodbye

    def forget(self) -> None:
        """Close, and stop following the engine (the app's sessions use another now)."""
        self.close()
        if event.contains(self.engine.sync_engine, "engine_disposed", self.close):
            event.remove(self.engine.sync_engine, "engine_disposed", self.close)
