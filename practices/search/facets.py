"""Facet counts from in-memory bitsets.

Each (facet, value) is a Python int used as a bitset over document numbers; counting a facet
value under any filter is an AND and a popcount, microseconds even at 100,000 documents. The
cache follows the index through `search_document.seq`: a search first reads the newest sequence
number and folds in only the documents changed since its last look.

Loading it is a few statements whatever the index's size: each facet value's documents come
as one aggregated string (`group_concat`/`string_agg`) rather than a row per pair, the
documents' numbers and dates as two such strings, read as JSON arrays (`numbers`) and put
newest first here; a long list of documents becomes a bitset a byte per document
(`_dense_bitset`). A record's id is looked up when one of its documents is first shown (a page
holds twenty), not loaded for the whole index. At 100,000 documents this is some hundreds of
milliseconds, where rows read through the ORM took five seconds.
"""

import asyncio
import gc
import json
import uuid
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from node.core.db import offloaded
from practices.search.models import SearchState

CHUNK = 5000
# A cache of this many documents or more is moved out of the garbage collector's sight once
# loaded (see `_freeze`).
FREEZE_AT = 10_000
# More documents changed than this share of the index (a reindex): read it all again.
RELOAD_SHARE = 0.2
# Read before every search: a Core statement built once (no ORM work per request).
SEARCH_STATE: Any = SearchState.__table__
CURRENT_SEQ = select(SEARCH_STATE.c.seq).where(SEARCH_STATE.c.id == 1)

# Dates as day numbers (`date.toordinal`), 0 for none: read as such from either database.
_DAY = {
    "sqlite": "CAST(julianday(sort_date) - 1721424.5 AS INTEGER)",
    "postgresql": "(sort_date - DATE '0001-01-01' + 1)",
}
_AGGREGATE = {
    "sqlite": "group_concat(doc_no)",
    "postgresql": "string_agg(doc_no::text, ',')",
}
# The documents' numbers and dates as two strings in the same order (both aggregates read the
# same rows in turn; ordered explicitly on PostgreSQL).
_AGGREGATE_DOCUMENTS = {
    "sqlite": f"group_concat(doc_no), group_concat(COALESCE({_DAY['sqlite']}, 0))",
    "postgresql": "string_agg(doc_no::text, ',' ORDER BY doc_no), "
    f"string_agg(COALESCE({_DAY['postgresql']}, 0)::text, ',' ORDER BY doc_no)",
}


def numbers(joined: str | None) -> list[int]:
    """The integers of an aggregated string (none for NULL: no rows), read as a JSON array:
    the JSON decoder reads a million numbers in half the time `int` takes one by one."""
    parsed: list[int] = json.loads(f"[{joined}]") if joined else []
    return parsed


def _documents_sql(dialect: str, where: str) -> str:
    return f"SELECT doc_no, active, COALESCE({_DAY[dialect]}, 0) FROM search_document WHERE {where}"


@dataclass
class FacetCache:
    seq: int = -1
    active: int = 0
    bits: dict[tuple[str, str], int] = field(default_factory=dict)
    # Each document's date (a day number, 0 when undated), and the record ids of the documents
    # shown so far (looked up as needed, `record_ids_of`).
    dates: dict[int, int] = field(default_factory=dict)
    record_ids: dict[int, uuid.UUID] = field(default_factory=dict)
    # The active documents, newest first (`date_key` order), kept in step with the changes.
    by_date: list[int] = field(default_factory=list)
    by_facet: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    size: int = 0  # the highest document number seen
    # The refresh under way in this process, if any: (its event loop, the state it reads, done)
    pending: tuple[asyncio.AbstractEventLoop, int, "asyncio.Future[None]"] | None = None

    async def refresh(self, session: AsyncSession) -> None:
        """Bring the cache to the index's newest state. Concurrent searches of one process
        share one refresh (the first one's) rather than each reading the same changes."""
        current = (await session.execute(CURRENT_SEQ)).scalar() or 0
        if current == self.seq:
            return
        loop = asyncio.get_running_loop()
        pending = self.pending
        if pending is not None and pending[0] is loop and pending[1] >= current:
            await asyncio.shield(pending[2])  # done however that refresh ends
            if self.seq == current:
                return
        done: asyncio.Future[None] = loop.create_future()
        self.pending = (loop, current, done)
        try:
            await self._refresh(session, current)
        finally:
            done.set_result(None)
            if self.pending is not None and self.pending[2] is done:
                self.pending = None

    async def _refresh(self, session: AsyncSession, current: int) -> None:
        dialect = (await session.connection()).dialect.name
        for _ in range(5):
            start = self.seq
            if start == current:
                return
            with offloaded():  # the first load reads the whole index: not on the event loop
                if start < 0 or start > current:  # first, or a database other than the last
                    loaded = await self._read_all(session, dialect, current)
                    if self.seq == start:
                        self._load(*loaded, current)
                        if len(self.dates) >= FREEZE_AT:
                            _freeze()
                        return
                    continue
                rows = (
                    await session.execute(
                        text(_documents_sql(dialect, "seq > :after AND seq <= :upto")),
                        {"after": start, "upto": current},
                    )
                ).all()
                if len(rows) > max(1000, RELOAD_SHARE * len(self.dates)):
                    loaded = await self._read_all(session, dialect, current)
                    if self.seq == start:
                        self._load(*loaded, current)
                        return
                    continue
                facets = await self._facets_of(session, [r[0] for r in rows if r[1]])
            if self.seq == start:  # else another search moved it meanwhile: read again
                self._apply(rows, facets)
                self.seq = current
                return

    async def _read_all(
        self, session: AsyncSession, dialect: str, current: int
    ) -> tuple[dict[int, int], list[int], Any]:
        """Everything, in two statements: the active documents (their numbers and dates as
        two strings of one row, put newest first here), and each facet value's documents as
        one string."""
        documents, days = (
            await session.execute(
                text(
                    f"SELECT {_AGGREGATE_DOCUMENTS[dialect]} FROM "
                    "search_document WHERE active AND seq <= :upto"
                ),
                {"upto": current},
            )
        ).one()
        dates = dict(zip(numbers(documents), numbers(days), strict=True))
        # newest first, as `date_key` orders them: by number, highest first, then (a stable
        # sort, reversed: equal dates keep that order) by date, newest first
        by_date = sorted(sorted(dates, reverse=True), key=dates.__getitem__, reverse=True)
        aggregated = (
            await session.execute(
                text(
                    f"SELECT facet, value, {_AGGREGATE[dialect]} FROM search_facet "
                    "GROUP BY facet, value"
                )
            )
        ).all()
        return dates, by_date, aggregated

    def _load(
        self, dates: dict[int, int], by_date: list[int], aggregated: Any, current: int
    ) -> None:
        self.dates = dates
        self.by_date = by_date
        self.size = max(by_date, default=0)
        self.active = bitset(by_date, self.size)
        self.bits = {
            (facet, value): bitset(numbers(doc_nos), self.size)
            for facet, value, doc_nos in aggregated
            if doc_nos
        }
        self.record_ids = {}
        self.seq = current
        self._index_facets()

    async def _facets_of(
        self, session: AsyncSession, doc_nos: list[int]
    ) -> dict[int, list[tuple[str, str]]]:
        out: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for start in range(0, len(doc_nos), CHUNK):
            chunk = doc_nos[start : start + CHUNK]
            params = {f"d{i}": d for i, d in enumerate(chunk)}
            names = ", ".join(f":{name}" for name in params)
            stmt = text(f"SELECT doc_no, facet, value FROM search_facet WHERE doc_no IN ({names})")
            for doc_no, facet, value in (await session.execute(stmt, params)).all():
                out[doc_no].append((facet, value))
        return out

    def _apply(self, rows: Any, facets: dict[int, list[tuple[str, str]]]) -> None:
        """Fold in the documents changed since the last look: each leaves every bitset (one
        AND per facet value for all of them together) and, when still active, joins its own
        values again."""
        self.size = max([self.size, *(r[0] for r in rows)])
        changed = bitset((r[0] for r in rows), self.size)
        keep = ~changed
        self.active &= keep
        self.bits = {key: bits & keep for key, bits in self.bits.items()}
        for doc_no, _, _ in rows:
            self.record_ids.pop(doc_no, None)
            day = self.dates.get(doc_no)
            if day is not None:
                at = bisect_left(self.by_date, date_key(day, doc_no), key=self._date_key_of)
                if at < len(self.by_date) and self.by_date[at] == doc_no:
                    del self.by_date[at]
                del self.dates[doc_no]
        for doc_no, is_active, day in rows:
            if not is_active:
                continue
            bit = 1 << doc_no
            self.active |= bit
            self.dates[doc_no] = day
            at = bisect_left(self.by_date, date_key(day, doc_no), key=self._date_key_of)
            self.by_date.insert(at, doc_no)
            for key in facets.get(doc_no, ()):
                self.bits[key] = self.bits.get(key, 0) | bit
        self.bits = {key: bits for key, bits in self.bits.items() if bits}
        self._index_facets()

    def _date_key_of(self, doc_no: int) -> tuple[int, int]:
        return date_key(self.dates[doc_no], doc_no)

    def _index_facets(self) -> None:
        by_facet: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for (facet, value), bits in self.bits.items():
            by_facet[facet].append((value, bits))
        self.by_facet = dict(by_facet)

    async def record_ids_of(self, session: AsyncSession, doc_nos: list[int]) -> list[uuid.UUID]:
        """The record ids of these (active) documents, looked up once each."""
        missing = [d for d in doc_nos if d not in self.record_ids]
        if missing:
            params = {f"d{i}": d for i, d in enumerate(missing)}
            names = ", ".join(f":{name}" for name in params)
            rows = await session.execute(
                text(f"SELECT doc_no, record_id FROM search_document WHERE doc_no IN ({names})"),
                params,
            )
            for doc_no, record_id in rows:
                self.record_ids[doc_no] = (
                    record_id if isinstance(record_id, uuid.UUID) else uuid.UUID(record_id)
                )
        return [self.record_ids[d] for d in doc_nos]

    def allowed(self, filters: dict[str, frozenset[str]], *, skip: str | None = None) -> int:
        """Documents passing every facet filter (OR within a facet, AND across facets)."""
        result = self.active
        for facet, values in filters.items():
            if facet == skip or not values:
                continue
            either = 0
            for value in values:
                either |= self.bits.get((facet, value), 0)
            result &= either
        return result

    def counts(
        self, matched: int, filters: dict[str, frozenset[str]], facets: tuple[str, ...]
    ) -> dict[str, dict[str, int]]:
        """Disjunctive counts: each facet's values among the matches passing every filter
        but that facet's own (one AND and one popcount per value)."""
        everything = matched & self.allowed(filters)
        out: dict[str, dict[str, int]] = {}
        for facet in facets:
            base = matched & self.allowed(filters, skip=facet) if facet in filters else everything
            counted = [
                (value, (bits & base).bit_count()) for value, bits in self.by_facet.get(facet, ())
            ]
            out[facet] = dict(
                sorted(((v, n) for v, n in counted if n), key=lambda x: (-x[1], x[0]))
            )
        return out

    def newest_first(self) -> list[int]:
        return self.by_date


def date_key(day: int, doc_no: int) -> tuple[int, int]:
    """Newest first, undated (0) last, then by document number, highest first."""
    return (-day, -doc_no)


def day_number(day: date | None) -> int:
    return day.toordinal() if day else 0


def _freeze() -> None:
    """Every full collection would otherwise walk the whole cache (and the app's own modules,
    models and routes), some milliseconds each time, at random in the middle of requests:
    measured, it doubled the cost of a search at 100,000 documents. Freezing leaves them to
    reference counting (what becomes unreachable is still freed) and keeps them out of the
    collector's passes; what is allocated later is collected as usual."""
    gc.freeze()


def bitset(doc_nos: Iterable[int], size: int = 0) -> int:
    """The bitset of these document numbers (``size``: the highest there may be, when known,
    saves growing the buffer on the way)."""
    if isinstance(doc_nos, list) and len(doc_nos) * DENSE >= size:
        return _dense_bitset(doc_nos, size)
    array = bytearray(size // 8 + 1)
    for doc_no in doc_nos:
        try:
            array[doc_no >> 3] |= 1 << (doc_no & 7)
        except IndexError:
            array.extend(bytes(max(doc_no >> 3, 2 * len(array)) + 1 - len(array)))
            array[doc_no >> 3] |= 1 << (doc_no & 7)
    return int.from_bytes(array, "little")


# A list of at least one document in this many (a facet value's documents, a broad match)
# is made a bitset a byte per document, then read as a binary number (`_dense_bitset`): half
# the cost of setting its bits one by one.
DENSE = 16
_BINARY_DIGITS = b"01" + bytes(254)


def _dense_bitset(doc_nos: list[int], size: int) -> int:
    marks = bytearray(max(size, max(doc_nos, default=0)) + 1)
    for doc_no in doc_nos:
        marks[doc_no] = 1
    # "0"/"1" per document, the highest first: the bitset's binary digits
    return int(marks.translate(_BINARY_DIGITS)[::-1], 2)


def member_test(bits: int) -> bytes:
    """The bitset as bytes, for O(1) membership tests while walking a ranked list."""
    return bits.to_bytes(bits.bit_length() // 8 + 1, "little")


def contains(table: bytes, doc_no: int) -> bool:
    index = doc_no >> 3
    return index < len(table) and bool(table[index] >> (doc_no & 7) & 1)
