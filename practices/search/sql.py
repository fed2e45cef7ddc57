"""The SQL adapter: SQLite FTS5 on the embedded default, PostgreSQL full text otherwise.

Text matching and ranking run in the database; facet filters and counts run on the in-memory
bitsets of `FacetCache`, which both databases share.
"""

import uuid
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from node.errors import InvalidInput
from node.pagination import decode_cursor, encode_cursor
from practices.search.facets import FacetCache, bitset, contains, member_test
from practices.search.models import SearchDocument, SearchFacet, SearchState
from practices.search.port import FACETS, IndexDocument, SearchQuery, SearchResult
from practices.search.text import QueryTerms, fts5_match, normalise, query_terms, tsquery

TITLE_WEIGHT = 4.0


class SqlSearch:
    name = "sql"

    def __init__(self) -> None:
        self.cache = FacetCache()

    # --- reading --------------------------------------------------------------------------

    async def search(self, session: AsyncSession, query: SearchQuery) -> SearchResult:
        await self.cache.refresh(session)
        terms = query_terms(query.text)
        allowed = self.cache.allowed(query.filters)
        if terms.empty:
            matched = self.cache.active
            ranked = self._newest_first(allowed)
            scores: dict[int, float] = {}
        else:
            scores = await self._match(session, terms)
            matched = bitset(list(scores)) & self.cache.active
            ranked = None
        facets = self.cache.counts(matched, query.filters, FACETS)
        hits = matched & allowed
        total = hits.bit_count()
        if ranked is None:
            ranked = self._rank(scores, hits, query.sort)
        elif query.sort == "relevance":
            ranked = ranked  # no text: relevance has nothing to go on, newest first
        page, next_cursor = self._page(ranked, query, scores)
        record_ids = [self.cache.record_ids[d] for d in page]
        return SearchResult(record_ids, total, facets, next_cursor)

    async def _match(self, session: AsyncSession, terms: QueryTerms) -> dict[int, float]:
        if (await session.connection()).dialect.name == "sqlite":
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

    def _newest_first(self, allowed: int) -> list[int]:
        table = member_test(allowed)
        return [d for d in self.cache.newest_first() if contains(table, d)]

    def _rank(self, scores: dict[int, float], hits: int, sort: str) -> list[int]:
        table = member_test(hits)
        kept = [d for d in scores if contains(table, d)]
        if sort == "date":
            dates = self.cache.dates
            return sorted(
                kept, key=lambda d: (dates.get(d) is not None, dates.get(d), d), reverse=True
            )
        return sorted(kept, key=lambda d: (-scores[d], d))

    def _page(
        self, ranked: list[int], query: SearchQuery, scores: dict[int, float]
    ) -> tuple[list[int], str | None]:
        start = 0
        if query.cursor:
            position, doc_no = decode_cursor(query.cursor, 2)
            if not isinstance(position, int) or not isinstance(doc_no, int) or position < 0:
                raise InvalidInput("cursor", "not a cursor this server issued")
            # The position is a hint; the document number keeps pages stable if it moved.
            if position < len(ranked) and ranked[position] == doc_no:
                start = position + 1
            else:
                start = ranked.index(doc_no) + 1 if doc_no in ranked else len(ranked)
        page = ranked[start : start + query.limit]
        more = start + query.limit < len(ranked)
        cursor = encode_cursor([start + len(page) - 1, page[-1]]) if more and page else None
        return page, cursor

    # --- writing (sync: runs in the outbox task, or via AsyncSession.run_sync) -------------

    def upsert(self, session: Session, documents: list[IndexDocument]) -> None:
        if not documents:
            return
        seq = _next_seq(session)
        sqlite = session.get_bind().dialect.name == "sqlite"
        for doc in documents:
            existing = session.scalar(
                select(SearchDocument).where(SearchDocument.record_id == doc.record_id)
            )
            if existing is None:
                existing = SearchDocument(record_id=doc.record_id, seq=seq)
                session.add(existing)
                session.flush()
            elif sqlite and existing.active:
                _fts_delete(session, existing)
            existing.active = True
            existing.seq = seq
            existing.sort_date = doc.sort_date
            existing.title = doc.title[:300]
            existing.title_norm = normalise(doc.title_text)
            existing.body_norm = normalise(doc.body_text)
            session.execute(delete(SearchFacet).where(SearchFacet.doc_no == existing.doc_no))
            session.add_all(
                SearchFacet(doc_no=existing.doc_no, facet=facet, value=value)
                for facet, values in doc.facets.items()
                for value in dict.fromkeys(values)
            )
            session.flush()
            if sqlite:
                session.execute(
                    text(
                        "INSERT INTO practice_fts(rowid, title_norm, body_norm) VALUES (:d, :t, :b)"
                    ),
                    {"d": existing.doc_no, "t": existing.title_norm, "b": existing.body_norm},
                )

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
            doc.title_norm = doc.body_norm = ""
        session.flush()

    def clear(self, session: Session) -> None:
        session.execute(delete(SearchFacet))
        session.execute(
            update(SearchDocument).values(
                active=False, title_norm="", body_norm="", seq=_next_seq(session)
            )
        )
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text("INSERT INTO practice_fts(practice_fts) VALUES ('rebuild')"))


def _next_seq(session: Session) -> int:
    session.execute(update(SearchState).where(SearchState.id == 1).values(seq=SearchState.seq + 1))
    return int(session.scalar(select(SearchState.seq).where(SearchState.id == 1)) or 0)


def _fts_delete(session: Session, doc: SearchDocument) -> None:
    session.execute(
        text(
            "INSERT INTO practice_fts(practice_fts, rowid, title_norm, body_norm) "
            "VALUES ('delete', :d, :t, :b)"
        ),
        {"d": doc.doc_no, "t": doc.title_norm, "b": doc.body_norm},
    )
