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
"""

from collections import OrderedDict
from collections.abc import Hashable

from fastapi import Response
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

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


async def counter(session: AsyncSession, name: str) -> int | None:
    """The group's change counter, None when this database has none (then nothing is kept).
    Read on the session's connection before the rows the answer shows."""
    connection = await session.connection()
    value = (await connection.execute(_READ[name])).scalar()
    return None if value is None else int(value)


async def counters(session: AsyncSession, *names: str) -> tuple[int, ...] | None:
    """Several groups' counters, read together (one statement); None when one is missing."""
    connection = await session.connection()
    rows = await connection.execute(_READ_MANY, {"names": list(names)})
    found = {name: value for name, value in rows}
    if any(name not in found for name in names):
        return None
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
        body, headers = kept
        return Response(body, media_type="application/json", headers=headers)

    def put(self, key: Hashable, answer: Response) -> Response:
        """Keep a JSON answer (not one larger than `largest`); returns it."""
        body = bytes(answer.body)
        if len(body) <= self.largest:
            headers = {"ETag": answer.headers["etag"]} if "etag" in answer.headers else {}
            self._answers[key] = (body, headers)
            self._answers.move_to_end(key)
            while len(self._answers) > self.kept:
                self._answers.popitem(last=False)
        return answer
