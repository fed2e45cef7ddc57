"""The SQL adapter: SQLite FTS5 on the embedded default, PostgreSQL full text otherwise.

Text matching and ranking run in the database; facet filters and counts run on the in-memory
bitsets of `FacetCache`, which both databases share.
"""

import heapq
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from itertools import islice
from typing import Any

from sqlalchemy import Table, delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from node.core.errors import InvalidInput
from node.core.pagination import decode_cursor, encode_cursor
from practices.search.facets import FacetCache, bitset, contains, member_test
from practices.search.models import SearchDocument, SearchFacet, SearchState
from practices.search.port import FACETS, IndexDocument, SearchQuery, SearchResult
from practices.search.text import QueryTerms, fts5_match, normalise, query_terms, tsquery

TITLE_WEIGHT = 4.0
# PostgreSQL refuses a tsvector over 1 MB; nobody searches past the first 200,000 characters.
MAX_INDEXED_TEXT = 200_000
# Core tables: executemany without per-row ORM work, for bulk indexing.
SEARCH_DOCUMENT: Table = SearchDocument.__table__  # type: ignore[assignment]
SEARCH_FACET: Table = SearchFacet.__table__  # type: ignore[assignment]


Key = tuple[int | float, ...]


@dataclass
class Order:
    """A ranking: each document's sort key (ascending), and the candidates in key order when
    they are already sorted (newest first), so a page can stop early."""

    key: Callable[[int], Key]
    candidates: Iterable[int]
    presorted: bool

    def after(self, last: Key | None, n: int) -> list[int]:
        """The ``n`` best documents ranked after ``last`` (a keyset: stable when others move)."""
        remaining = (d for d in self.candidates if last is None or self.key(d) > last)
        if self.presorted:
            return list(islice(remaining, n))
        return heapq.nsmallest(n, remaining, key=self.key)


def _page(order: Order, query: SearchQuery) -> tuple[list[int], str | None]:
    last = None
    if query.cursor:
        decoded = decode_cursor(query.cursor, 1)[0]
        if not isinstance(decoded, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in decoded
        ):
            raise InvalidInput("cursor", "not a cursor this server issued")
        last = tuple(decoded)
    ranked = order.after(last, query.limit + 1)
    page = ranked[: query.limit]
    more = len(ranked) > query.limit
    return page, encode_cursor([list(order.key(page[-1]))]) if more and page else None


@dataclass
class Match:
    """What the index matched for one text, at one state of the index: each document's score,
    the matches as a bitset, and (once asked) the matches best first."""

    seq: int
    scores: dict[int, float]
    bits: int
    best_first: list[int] | None = None

    def ranked(self) -> list[int]:
        if self.best_first is None:
            scores = self.scores
            self.best_first = sorted(scores, key=lambda d: (-scores[d], d))
        return self.best_first


# Texts whose matches a process keeps (the latest ones asked), and how many matched documents
# in all (some tens of MB): the next page of a result, and a text many people search, cost no
# second full-text match until the index changes.
MATCH_CACHE = 64
MATCH_CACHE_DOCUMENTS = 400_000
COUNTED_CACHE = 256


class SqlSearch:
    name = "sql"

    def __init__(self) -> None:
        self.cache = FacetCache()
        self.matches: OrderedDict[tuple[str, str], Match] = OrderedDict()
        # The total and facet counts of a query, at an index state: the same query again (a
        # next page, a popular search, the empty search's facets) counts nothing again.
        self.counted: OrderedDict[Any, tuple[int, int, dict[str, dict[str, int]]]] = OrderedDict()

    # --- reading --------------------------------------------------------------------------

    async def search(self, session: AsyncSession, query: SearchQuery) -> SearchResult:
        await self.cache.refresh(session)
        terms = query_terms(query.text)
        shown = self.cache.active & ~await self._doc_nos(session, query.hidden)
        allowed = self.cache.allowed(query.filters) & shown
        if terms.empty:
            matched = shown
            order: Order = self._newest_first(allowed)
        else:
            match = await self._match(session, terms)
            matched = match.bits & shown
            order = self._ranked(match, matched & allowed, query.sort)
        counted_key = (fts5_match(terms), frozenset(query.filters.items()), query.hidden)
        counted = self.counted.get(counted_key)
        if counted is not None and counted[0] == self.cache.seq:
            self.counted.move_to_end(counted_key)
            _, total, facets = counted
        else:
            facets = self.cache.counts(matched, query.filters, FACETS)
            total = (matched & allowed).bit_count()
            self.counted[counted_key] = (self.cache.seq, total, facets)
            while len(self.counted) > COUNTED_CACHE:
                self.counted.popitem(last=False)
        page, next_cursor = _page(order, query)
        return SearchResult([self.cache.record_ids[d] for d in page], total, facets, next_cursor)

    async def _doc_nos(self, session: AsyncSession, record_ids: frozenset[uuid.UUID]) -> int:
        """The indexed documents of these records, as a bitset."""
        if not record_ids:
            return 0
        rows = await session.scalars(
            select(SearchDocument.doc_no).where(
                SearchDocument.record_id.in_(record_ids), SearchDocument.active
            )
        )
        return bitset(list(rows))

    async def _match(self, session: AsyncSession, terms: QueryTerms) -> Match:
        """The index's matches of these terms, kept for the next search of the same terms
        while the index stays as it is (`FacetCache.seq`, brought up to date just before)."""
        dialect = (await session.connection()).dialect.name
        key = (dialect, fts5_match(terms))
        cached = self.matches.get(key)
        if cached is not None and cached.seq == self.cache.seq:
            self.matches.move_to_end(key)
            return cached
        scores = await self._scores(session, dialect, terms)
        match = Match(self.cache.seq, scores, bitset(list(scores)))
        self.matches[key] = match
        self.matches.move_to_end(key)
        kept = sum(len(m.scores) for m in self.matches.values())
        while len(self.matches) > MATCH_CACHE or (kept > MATCH_CACHE_DOCUMENTS and self.matches):
            kept -= len(self.matches.popitem(last=False)[1].scores)
        return match

    async def _scores(
        self, session: AsyncSession, dialect: str, terms: QueryTerms
    ) -> dict[int, float]:
        if dialect == "sqlite":
            sql = text(
                "SELECT rowid, -bm25(practice_fts, :w, 1.0) FROM practice_fts "
                "WHERE practice_fts MATCH :m"
            )
            params: dict[str, Any] = {"m": fts5_match(terms), "w": TITLE_WEIGHT}
        else:
            sql = text(
                "SELECT doc_no, ts_rank_cd(tsv, q) FROM search_document, "
                "to_tsquery('simple', :q) q WHERE active AND tsv @@ q"
            )
            params = {"q": tsquery(terms)}
        rows = await session.execute(sql, params)
        return {doc_no: float(score) for doc_no, score in rows}

    def _newest_first(self, allowed: int) -> Order:
        """No text to rank by: newest first, walked lazily so page one stops early."""
        table = member_test(allowed)
        dates = self.cache.dates
        newest = self.cache.newest_first()
        return Order(
            key=lambda d: _date_key(dates.get(d), d),
            candidates=(d for d in newest if contains(table, d)),
            presorted=True,
        )

    def _ranked(self, match: Match, hits: int, sort: str) -> Order:
        table = member_test(hits)
        scores = match.scores
        if sort == "date":
            dates = self.cache.dates
            kept = [d for d in scores if contains(table, d)]
            return Order(lambda d: _date_key(dates.get(d), d), kept, presorted=False)
        best = match.ranked()
        return Order(
            lambda d: (-scores[d], d),
            (d for d in best if contains(table, d)),
            presorted=True,
        )

    # --- writing (sync: runs in the outbox task, or via AsyncSession.run_sync) -------------

    def upsert(self, session: Session, documents: list[IndexDocument]) -> None:
        """Index (or re-index) documents in bulk: a few statements per batch, not per record."""
        documents = list({d.record_id: d for d in documents}.values())
        if not documents:
            return
        seq = _next_seq(session)
        sqlite = session.get_bind().dialect.name == "sqlite"
        existing = {
            row.record_id: row
            for row in session.execute(
                select(
                    SearchDocument.doc_no,
                    SearchDocument.record_id,
                    SearchDocument.active,
                    SearchDocument.title_norm,
                    SearchDocument.body_norm,
                ).where(SearchDocument.record_id.in_([d.record_id for d in documents]))
            )
        }
        if sqlite:
            _fts_delete_many(session, [r for r in existing.values() if r.active])
        rows = [
            {
                "record_id": d.record_id,
                "active": True,
                "seq": seq,
                "sort_date": d.sort_date,
                "title": d.title[:300],
                "title_norm": normalise(d.title_text)[:MAX_INDEXED_TEXT],
                "body_norm": normalise(d.body_text)[:MAX_INDEXED_TEXT],
            }
            for d in documents
        ]
        old = [
            r | {"doc_no": existing[r["record_id"]].doc_no}
            for r in rows
            if r["record_id"] in existing
        ]
        new = [r for r in rows if r["record_id"] not in existing]
        if old:
            session.execute(update(SearchDocument), old)
            session.execute(
                delete(SearchFacet).where(SearchFacet.doc_no.in_([r["doc_no"] for r in old]))
            )
        doc_nos = {r["record_id"]: r["doc_no"] for r in old}
        if new:
            inserted = session.execute(
                insert(SEARCH_DOCUMENT).returning(
                    SearchDocument.doc_no, SearchDocument.record_id, sort_by_parameter_order=True
                ),
                new,
            )
            doc_nos |= {record_id: doc_no for doc_no, record_id in inserted}
        facets = [
            {"doc_no": doc_nos[d.record_id], "facet": facet, "value": value}
            for d in documents
            for facet, values in d.facets.items()
            for value in dict.fromkeys(values)
        ]
        if facets:
            session.execute(insert(SEARCH_FACET), facets)
        if sqlite:
            session.execute(
                text(
                    "INSERT INTO practice_fts(rowid, title_norm, body_norm) "
                    "VALUES (:doc_no, :title_norm, :body_norm)"
                ),
                [r | {"doc_no": doc_nos[r["record_id"]]} for r in rows],
            )
        session.expire_all()

    def remove(self, session: Session, record_ids: list[uuid.UUID]) -> None:
        docs = session.scalars(
            select(SearchDocument).where(
                SearchDocument.record_id.in_(record_ids), SearchDocument.active
            )
        ).all()
        if not docs:
            return
        seq = _next_seq(session)
        sqlite = session.get_bind().dialect.name == "sqlite"
        for doc in docs:
            if sqlite:
                _fts_delete(session, doc)
            session.execute(delete(SearchFacet).where(SearchFacet.doc_no == doc.doc_no))
            doc.active = False
            doc.seq = seq
            # nothing of a removed record's text stays: a withdrawal may be for personal data
            doc.title = doc.title_norm = doc.body_norm = ""
        session.flush()

    def clear(self, session: Session) -> None:
        session.execute(delete(SearchFacet))
        session.execute(
            update(SearchDocument).values(
                active=False, title="", title_norm="", body_norm="", seq=_next_seq(session)
            )
        )
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text("INSERT INTO practice_fts(practice_fts) VALUES ('rebuild')"))


def _date_key(day: date | None, doc_no: int) -> Key:
    """Newest first, undated last, then by document number: the same order as
    `FacetCache.newest_first`."""
    return (-(day.toordinal() if day else 0), -doc_no)


def _next_seq(session: Session) -> int:
    session.execute(update(SearchState).where(SearchState.id == 1).values(seq=SearchState.seq + 1))
    return int(session.scalar(select(SearchState.seq).where(SearchState.id == 1)) or 0)


def _fts_delete(session: Session, doc: SearchDocument) -> None:
    _fts_delete_many(session, [doc])


def _fts_delete_many(session: Session, docs: list[Any]) -> None:
    """External-content FTS5 forgets a row only when told its old text."""
    if docs:
        session.execute(
            text(
                "INSERT INTO practice_fts(practice_fts, rowid, title_norm, body_norm) "
                "VALUES ('delete', :d, :t, :b)"
            ),
            [{"d": doc.doc_no, "t": doc.title_norm, "b": doc.body_norm} for doc in docs],
        )
