"""Facet counts from in-memory bitsets.

Each (facet, value) is a Python int used as a bitset over document numbers; counting a facet
value under any filter is an AND and a popcount, microseconds even at 100,000 documents. The
cache follows the index through `search_document.seq`: a search first reads the newest sequence
number and folds in only the documents changed since its last look.
"""

import gc
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from node.core.db import offloaded
from practices.search.models import SearchDocument, SearchFacet, SearchState

CHUNK = 5000
# A cache of this many documents or more holds some hundreds of thousands of objects for the
# life of the process: they are moved out of the garbage collector's sight once loaded.
FREEZE_AT = 10_000
# Read before every search: a Core statement built once (no ORM work per request).
SEARCH_STATE: Any = SearchState.__table__
CURRENT_SEQ = select(SEARCH_STATE.c.seq).where(SEARCH_STATE.c.id == 1)


@dataclass
class FacetCache:
    seq: int = -1
    active: int = 0
    bits: dict[tuple[str, str], int] = field(default_factory=dict)
    doc_facets: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    record_ids: dict[int, uuid.UUID] = field(default_factory=dict)
    dates: dict[int, date | None] = field(default_factory=dict)
    by_date: list[int] | None = None

    async def refresh(self, session: AsyncSession) -> None:
        current = (await session.execute(CURRENT_SEQ)).scalar() or 0
        if current == self.seq:
            return
        with offloaded():  # the first load reads the whole index: not on the event loop
            rows = (
                await session.execute(
                    select(
                        SearchDocument.doc_no,
                        SearchDocument.record_id,
                        SearchDocument.active,
                        SearchDocument.sort_date,
                    ).where(SearchDocument.seq > self.seq, SearchDocument.seq <= current)
                )
            ).all()
            facets = await self._facets_of(session, [r[0] for r in rows if r[2]])
        if self.seq < 0:
            self._load(rows, facets)
            if len(rows) >= FREEZE_AT:
                _freeze()
        else:
            self._apply(rows, facets)
        self.seq = current
        self.by_date = None

    async def _facets_of(
        self, session: AsyncSession, doc_nos: list[int]
    ) -> dict[int, list[tuple[str, str]]]:
        out: dict[int, list[tuple[str, str]]] = defaultdict(list)
        if self.seq < 0:  # first load: read everything in one pass
            stmt: Any = select(SearchFacet.doc_no, SearchFacet.facet, SearchFacet.value)
            for doc_no, facet, value in (await session.execute(stmt)).all():
                out[doc_no].append((facet, value))
            return out
        for start in range(0, len(doc_nos), CHUNK):
            chunk = doc_nos[start : start + CHUNK]
            stmt = select(SearchFacet.doc_no, SearchFacet.facet, SearchFacet.value).where(
                SearchFacet.doc_no.in_(chunk)
            )
            for doc_no, facet, value in (await session.execute(stmt)).all():
                out[doc_no].append((facet, value))
        return out

    def _load(self, rows: Any, facets: dict[int, list[tuple[str, str]]]) -> None:
        size = max((r[0] for r in rows), default=0) // 8 + 1
        arrays: dict[tuple[str, str], bytearray] = defaultdict(lambda: bytearray(size))
        active = bytearray(size)
        for doc_no, record_id, is_active, sort_date in rows:
            if not is_active:
                continue
            active[doc_no >> 3] |= 1 << (doc_no & 7)
            self.record_ids[doc_no] = record_id
            self.dates[doc_no] = sort_date
            pairs = facets.get(doc_no, [])
            self.doc_facets[doc_no] = pairs
            for key in pairs:
                arrays[key][doc_no >> 3] |= 1 << (doc_no & 7)
        self.active = int.from_bytes(active, "little")
        self.bits = {key: int.from_bytes(array, "little") for key, array in arrays.items()}

    def _apply(self, rows: Any, facets: dict[int, list[tuple[str, str]]]) -> None:
        for doc_no, record_id, is_active, sort_date in rows:
            bit = 1 << doc_no
            for key in self.doc_facets.pop(doc_no, []):
                self.bits[key] &= ~bit
            self.active &= ~bit
            self.record_ids.pop(doc_no, None)
            self.dates.pop(doc_no, None)
            if not is_active:
                continue
            self.active |= bit
            self.record_ids[doc_no] = record_id
            self.dates[doc_no] = sort_date
            pairs = facets.get(doc_no, [])
            self.doc_facets[doc_no] = pairs
            for key in pairs:
                self.bits[key] = self.bits.get(key, 0) | bit

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
        by_facet: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for (facet, value), bits in self.bits.items():
            by_facet[facet].append((value, bits))
        out: dict[str, dict[str, int]] = {}
        for facet in facets:
            base = matched & self.allowed(filters, skip=facet)
            counted = ((value, (bits & base).bit_count()) for value, bits in by_facet[facet])
            out[facet] = dict(
                sorted(((v, n) for v, n in counted if n), key=lambda x: (-x[1], x[0]))
            )
        return out

    def newest_first(self) -> list[int]:
        if self.by_date is None:
            self.by_date = sorted(
                self.record_ids, key=lambda d: (self.dates[d] or date.min, d), reverse=True
            )
        return self.by_date


def _freeze() -> None:
    """Every full collection would otherwise walk the whole cache (and the app's own modules,
    models and routes), some milliseconds each time, at random in the middle of requests:
    measured, it doubled the cost of a search at 100,000 documents. Freezing leaves them to
    reference counting (what becomes unreachable is still freed) and keeps them out of the
    collector's passes; what is allocated later is collected as usual."""
    gc.collect()
    gc.freeze()


def bitset(doc_nos: list[int]) -> int:
    if not doc_nos:
        return 0
    array = bytearray(max(doc_nos) // 8 + 1)
    for doc_no in doc_nos:
        array[doc_no >> 3] |= 1 << (doc_no & 7)
    return int.from_bytes(array, "little")


def member_test(bits: int) -> bytes:
    """The bitset as bytes, for O(1) membership tests while walking a ranked list."""
    return bits.to_bytes(bits.bit_length() // 8 + 1, "little")


def contains(table: bytes, doc_no: int) -> bool:
    index = doc_no >> 3
    return index < len(table) and bool(table[index] >> (doc_no & 7) & 1)
