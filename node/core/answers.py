"""Answers kept while what they show is unchanged.

A list or search answer that many readers ask for alike (the first page of the registry, a
popular search) is built once and served again until the tables it shows change. What tells
a change is the database's own change counter of those tables (`ChangeCounter`, raised by
triggers in every writing transaction, whoever writes): a request reads it first (one indexed
row), then looks its answer up under that number and its own parameters. Nothing is ever
served for a number other than the one just read, so a change is seen by the very next
request, in every worker process and after a write by the CLI alike.

Only answers that are the same for every reader who may see them are kept: the caller puts
whatever else the answer depends on (signed in or not, the reader's languages) in the key.

An anonymous reader's request for an answer kept before is served by `KeptRoutes` before any
routing, parameter parsing or session: under the request as it came (path, query, the headers
an answer may depend on), once the same counters still read the same numbers.
"""

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, MutableMapping
from contextvars import ContextVar
from typing import Any, cast

from fastapi import Response
from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from node.core.db import READ_ONLY, read_only
from node.core.freshness import Compiled, Rereader
from node.core.models import ChangeCounter

COUNTER = ChangeCounter.__table__
_READ = {
    name: select(COUNTER.c.value).where(COUNTER.c.name == name)
    for name in ("registry", "practices", "pool")
}
_READ_MANY = select(COUNTER.c.name, COUNTER.c.value).where(
    COUNTER.c.name.in_(bindparam("names", expanding=True))
)

# How many answers a process keeps, and the largest it keeps: a few megabytes at most.
KEPT = 256
LARGEST = 256 * 1024


class _Keeping:
    """What one request's answer was kept under: each statement read and the value it gave
    (`stamp`), and whether the route kept or served a kept answer."""

    __slots__ = ("kept", "stamps")

    def __init__(self) -> None:
        self.stamps: list[tuple[Select[Any], object]] = []
        self.kept = False


_KEEPING: ContextVar[_Keeping | None] = ContextVar("integra_keeping", default=None)


def _noted(statement: Select[Any], value: object) -> None:
    keeping = _KEEPING.get()
    if keeping is not None:
        keeping.stamps.append((statement, value))


async def stamp(session: AsyncSession, statement: Select[Any]) -> object:
    """The scalar a statement reads that an answer is kept under (an index's sequence number,
    say), read on the session's connection; `KeptRoutes` reads it again before serving."""
    value = (await (await session.connection()).execute(statement)).scalar()
    _noted(statement, value)
    return value


async def counter(session: AsyncSession, name: str) -> int | None:
    """The group's change counter, None when this database has none (then nothing is kept).
    Read on the session's connection before the rows the answer shows."""
    value = await stamp(session, _READ[name])
    return None if value is None else int(cast(int, value))


async def counters(session: AsyncSession, *names: str) -> tuple[int, ...] | None:
    """Several groups' counters, read together (one statement); None when one is missing."""
    connection = await session.connection()
    rows = await connection.execute(_READ_MANY, {"names": list(names)})
    found = {name: value for name, value in rows}
    if any(name not in found for name in names):
        return None
    for name in names:
        _noted(_READ[name], found[name])
    return tuple(int(found[name]) for name in names)


class Answers:
    """The kept answers of one app (one database), least recently used first out: each a body
    and the headers that go with it (an ETag)."""

    def __init__(self, kept: int = KEPT, largest: int = LARGEST) -> None:
        self.kept, self.largest = kept, largest
        self._answers: OrderedDict[Hashable, tuple[bytes, dict[str, str]]] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> Response | None:
        """The answer kept under ``key``, as a new JSON response; None when there is none."""
        kept = self._answers.get(key)
        if kept is None:
            self.misses += 1
            return None
        self._answers.move_to_end(key)
        self.hits += 1
        _mark_kept()
        body, headers = kept
        return Response(body, media_type="application/json", headers=headers)

    def put(self, key: Hashable, answer: Response) -> Response:
        """Keep a JSON answer (not one larger than `largest`); returns it."""
        body = bytes(answer.body)
        _mark_kept()
        if len(body) <= self.largest:
            headers = {"ETag": answer.headers["etag"]} if "etag" in answer.headers else {}
            self._answers[key] = (body, headers)
            self._answers.move_to_end(key)
            while len(self._answers) > self.kept:
                self._answers.popitem(last=False)
        return answer


def _mark_kept() -> None:
    keeping = _KEEPING.get()
    if keeping is not None:
        keeping.kept = True


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The request headers an API answer may depend on; a request with any of the others below is
# left to the routes (credentials: the reader may see more; a condition: it may get a 304).
_VARYING = {b"accept", b"accept-language", b"host"}
_ROUTED = {b"authorization", b"if-none-match", b"if-modified-since", b"if-match", b"range"}


class KeptRoutes:
    """ASGI middleware: an anonymous reader's GET under ``prefix`` answered from the answers
    the routes kept, before routing, parameter parsing and sessions.

    The first time, the request goes to its route; when the route keeps its answer (or serves
    one it kept), the response as sent is kept under the request as it came (path, query
    string, `Accept`, `Accept-Language`, `Host`) with the statements the route read it under
    and their values (`stamp`). Asked again, those statements are read once more, on a plain
    connection, and the kept response is sent only if every one still gives the same value:
    the same answer the route would give, as fresh. Anything else (credentials, a condition,
    another method, an answer not kept) goes to the routes as before."""

    def __init__(
        self,
        app: ASGIApp,
        state: Any,
        *,
        prefix: str = "/api/",
        session_cookie: str | None = None,
        kept: int = KEPT,
        largest: int = LARGEST,
    ) -> None:
        # `state`: the app's, read at each request (its `session_factory`, which a test may
        # replace, and its `answers`, whose hits count these too).
        self.app, self.state, self.prefix = app, state, prefix
        self.cookie = f"{session_cookie}=".encode() if session_cookie else None
        self.kept, self.largest = kept, largest
        self._responses: OrderedDict[Hashable, tuple[Any, ...]] = OrderedDict()
        self._building: dict[Hashable, asyncio.Future[None]] = {}
        self._rereader: Rereader | None = None

    def _key(self, scope: Scope) -> Hashable | None:
        if scope["type"] != "http" or scope["method"] != "GET":
            return None
        path: str = scope["path"]
        if not path.startswith(self.prefix):
            return None
        varying: list[bytes] = []
        for name, value in scope["headers"]:
            if name in _VARYING:
                varying += (name, value)
            elif name in _ROUTED or (
                name == b"cookie" and self.cookie is not None and self.cookie in value
            ):
                return None
        return (path, scope.get("query_string", b""), scope.get("scheme"), tuple(varying))

    def _reader(self) -> Rereader | None:
        """The connection of this process's own for reading the statements again (see
        `node.core.freshness`), for the engine the app's sessions use now; None for sessions
        bound to one connection (a test's) or a database it cannot reach on its own."""
        bind = self.state.session_factory.kw.get("bind")
        reader = self._rereader
        if reader is not None and reader.engine is bind:
            return reader
        if reader is not None:
            self._rereader = None
            reader.forget()
        if isinstance(bind, AsyncEngine) and Rereader.usable(bind):
            self._rereader = Rereader(bind)
        return self._rereader

    async def _fresh(
        self, query: Select[Any], compiled: Compiled | None, values: tuple[object, ...]
    ) -> bool:
        """Whether the statements read the same values again: one statement for them all, on
        this process's own connection (`node.core.freshness`) when there is one, else on a
        pooled connection (PostgreSQL in autocommit, SQLite in a reader's plain BEGIN)."""
        reader = self._reader()
        if reader is not None and compiled is not None and reader.dialect is compiled.dialect:
            return await reader.read(compiled) == values
        factory = self.state.session_factory
        bind = factory.kw.get("bind")
        if isinstance(bind, AsyncEngine):
            async with bind.connect() as connection:
                if bind.dialect.name == "postgresql":
                    await connection.execution_options(isolation_level="AUTOCOMMIT")
                else:
                    await connection.execution_options(**{READ_ONLY: True})
                row = (await connection.execute(query)).one()
        else:  # sessions bound to one connection (a test's): read through one of them
            async with factory() as session:
                await read_only(session)
                row = (await (await session.connection()).execute(query)).one()
        return tuple(row) == values

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self._key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        if await self._served(key, scope, send):
            return
        building = self._building.get(key)
        if building is not None:
            # The same answer is being built for another reader (a popular search just after
            # a change or a start): wait for it rather than build it again alongside.
            await asyncio.shield(building)
            if await self._served(key, scope, send):
                return
        else:
            building = self._building[key] = asyncio.get_running_loop().create_future()
            try:
                await self._routed(key, scope, receive, send)
            finally:
                del self._building[key]
                building.set_result(None)
            return
        await self._routed(key, scope, receive, send)

    async def _served(self, key: Hashable, scope: Scope, send: Send) -> bool:
        """Send the response kept under ``key`` if it is still current; False otherwise."""
        found = self._responses.get(key)
        if found is None:
            return False
        query, compiled, values, route, start, body = found
        try:
            fresh = await self._fresh(query, compiled, values)
        except Exception:  # the database out of reach: the routes say so, as they do
            fresh = False
        if not fresh:
            if self._responses.get(key) is found:
                del self._responses[key]
            return False
        if key in self._responses:
            self._responses.move_to_end(key)
        self.state.answers.hits += 1
        scope["route"] = route  # the metrics and the access log name the route
        await send(dict(start))
        await send({"type": "http.response.body", "body": body})
        return True

    async def _routed(self, key: Hashable, scope: Scope, receive: Receive, send: Send) -> None:
        keeping = _Keeping()
        token = _KEEPING.set(keeping)
        start: Message | None = None
        chunks: list[bytes] = []
        complete = False

        async def captured(message: Message) -> None:
            nonlocal start, complete
            if message["type"] == "http.response.start":  # before the outer layers add theirs
                start = {"status": message["status"], "headers": list(message["headers"])}
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                complete = not message.get("more_body", False)
            await send(message)

        try:
            await self.app(scope, receive, captured)
        finally:
            _KEEPING.reset(token)
        if not (keeping.kept and keeping.stamps and complete and start is not None):
            return
        if start["status"] != 200 or sum(map(len, chunks)) > self.largest:
            return
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        head = {"type": "http.response.start", "status": 200, "headers": start["headers"]}
        query = select(*(statement.scalar_subquery() for statement, _ in keeping.stamps))
        values = tuple(value for _, value in keeping.stamps)
        reader = self._reader()
        compiled = reader.compiled(query) if reader is not None else None
        self._responses[key] = (query, compiled, values, scope.get("route"), head, body)
        self._responses.move_to_end(key)
        while len(self._responses) > self.kept:
            self._responses.popitem(last=False)
