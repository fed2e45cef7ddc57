"""The SQL adapter: SQLite FTS5 on the embedded default, PostgreSQL full text otherwise.

The index holds each text's word forms in its own language (`analysis.document_terms`); both
databases see them as plain tokens (FTS5 `ascii`, PostgreSQL's `simple` configuration), so
that they agree and Bulgarian is analysed too. A query's words are analysed in the reader's
language and those of the records present, each matched by any of its forms; a run of words
naming a concept (`concepts.find_concepts`) also matches the records naming it in another
language or filed under it, ranked below; a word matching nothing is corrected against the
index's own terms (`typos.Corrector`). Each word is one full-text match in the database; the
words are combined, and facet filters and counts run, on the in-memory bitsets of
`FacetCache`, which both databases share.

Speed (issues 16, 18 and 19): a match comes back best first, so a one-word query is not
sorted again; a match is found first, and one of more than `RANK_ALL` documents is ranked
among its title matches only (`Found`; on SQLite by BM25, on PostgreSQL through the titles'
own index); every match is read as one string, not a row per document; the words of a query
are combined by ANDing their bitsets before any document is scored; a process keeps the
matches of the latest queries until the index changes, and the same query asked by many
readers at once is matched once (`SqlSearch._match`); a page's record ids are looked up for
that page alone (`FacetCache.record_ids_of`).
"""

import asyncio
import json
import uuid
from collections import OrderedDict
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from node.core.db import offloaded
from node.core.memory import collector_paused
from practices.search import analysis
from practices.search.analysis import AnalysedQuery, QueryWord
from practices.search.concepts import Concept, Phrase, expansion, find_concepts
from practices.search.facets import (
    FacetCache,
    bitset,
    contains,
    date_key,
    member_test,
    numbers,
)
from practices.search.indexing import write_documents
from practices.search.matches import (
    Found,
    Match,
    Order,
    Ranked,
    best_first,
    members_of,
    names_expression,
    page_of,
    word_expression,
)
from practices.search.models import SearchDocument, SearchFacet, SearchState
from practices.search.port import FACETS, IndexDocument, SearchQuery, SearchResult
from practices.search.typos import Corrector

TITLE_WEIGHT = 4.0
# What a query word found through a concept it names adds to a document's score (a word found
# as typed adds 1 and more): the concept named in the reader's language, in another, the
# document only filed under it; named and filed under it, a little more; named more often or
# in the title, a little more again (below the next tier).
NAMED_OWN = 0.9
NAMED_OTHER = 0.8
FILED = 0.5
FILED_TOO = 0.05
NAMED_RANK = 0.04
READABLE = 0.3


# Texts whose matches a process keeps (the latest ones asked), and how many matched documents
# in all (some tens of MB): the next page of a result, and a text many people search, cost no
# second full-text match until the index changes.
MATCH_CACHE = 64
MATCH_CACHE_DOCUMENTS = 400_000
COUNTED_CACHE = 256
EXPRESSION_CACHE = 256


# One full-text match: each matching document with its rank, best first (then by number);
# on SQLite, all of them as one string and counted first, ranked when `RANK_ALL` of them at
# most (more: `Found`, their title matches ranked). Sorted in Python (`best_first`).
# The ranked ones come back as one string too ("doc,score,doc,score"): such a read runs in the
# connection's thread, and Python's sqlite3 module takes the GIL back for every row it returns,
# so under load a thread reading 2,000 rows one by one waited its turn 2,000 times behind the
# event loop's work. SQLite 3.40's printf('%.17g') may differ from the double in its last
# digit (it does not always read back exactly): scores that close rank as ties, by number.
RANK_ALL = 2000
_RANKED_SQLITE = (
    "SELECT group_concat(ranked) FROM (SELECT rowid || ',' || "
    "printf('%.17g', -bm25(practice_fts, :w, 1.0)) AS ranked FROM practice_fts "
    "WHERE practice_fts MATCH :m{limit})"
)
MATCH_SQLITE = text(_RANKED_SQLITE.format(limit=" LIMIT :n"))
# (a limit keeps SQLite from flattening the subquery into the aggregate, where bm25() cannot run)
MATCH_SQLITE_ALL = text(_RANKED_SQLITE.format(limit=" LIMIT -1"))
MATCHES_SQLITE = text(
    "SELECT count(*), group_concat(rowid) FROM practice_fts WHERE practice_fts MATCH :m"
)
# On PostgreSQL too, a match comes back as one row: its documents, or each one's rank beside
# it, as one string (a float8 prints as the shortest text that reads back the same), where a
# row per document cost the driver and the backend more than the match (a broad word: tens of
# thousands of rows).
MATCH_POSTGRESQL = text(
    "SELECT string_agg(doc_no || ',' || score, ',' ORDER BY score DESC, doc_no) FROM ("
    "SELECT doc_no, ts_rank_cd(tsv, q)::float8 AS score FROM search_document, "
    "to_tsquery('simple', :q) q WHERE active AND tsv @@ q) ranked"
)
# On PostgreSQL a rank reads the document's whole `tsv` (detoasted, often decompressed): a
# broad match (a prefix of three letters: 20,000 of 100,000 documents) took 110-140 ms ranked,
# 20-30 ms found unranked. So, as on SQLite: found first, ranked when `RANK_ALL` at most, else
# ranked among its title matches, read from their own index (migration 0028).
MATCHES_POSTGRESQL = text(
    "SELECT count(*), string_agg(doc_no::text, ',') FROM search_document, "
    "to_tsquery('simple', :q) q WHERE active AND tsv @@ q"
)
MATCH_TITLES_POSTGRESQL = text(
    "SELECT string_agg(doc_no || ',' || score, ',' ORDER BY score DESC, doc_no) FROM ("
    "SELECT doc_no, ts_rank_cd(tsv, q)::float8 AS score FROM search_document, "
    "to_tsquery('simple', :q) q WHERE active AND to_tsvector('simple', title_norm) @@ q) ranked"
)


class SqlSearch:
    name = "sql"

    def __init__(self) -> None:
        self.cache = FacetCache()
        self.matches: OrderedDict[tuple[str, AnalysedQuery, str | None], Match] = OrderedDict()
        # The total and facet counts of a query, at an index state: the same query again (a
        # next page, a popular search, the empty search's facets) counts nothing again.
        self.counted: OrderedDict[Any, tuple[int, int, dict[str, dict[str, int]]]] = OrderedDict()
        self.expressions: OrderedDict[tuple[str, str], tuple[int, Found]] = OrderedDict()
        # how many documents the two caches above hold in all (kept as they change)
        self.matches_kept = 0
        self.expressions_held = 0
        self.present: list[str] = []
        self.languages_seq = -1
        self.corrector: Corrector | None = None
        self.vocabulary_seq = -1
        self.in_flight: dict[
            Any, tuple[asyncio.AbstractEventLoop, int, asyncio.Future[Match | None]]
        ] = {}

    # --- reading --------------------------------------------------------------------------

    async def search(self, session: AsyncSession, query: SearchQuery) -> SearchResult:
        await self.cache.refresh(session)
        reader = query.languages[0] if query.languages else None
        analysed = analysis.query_terms(query.text, self._languages(query.languages))
        shown = self.cache.active & ~await self._doc_nos(session, query.hidden)
        allowed = self.cache.allowed(query.filters) & shown
        corrected = None
        if analysed.empty:
            matched = shown
            order: Order = self._newest_first(allowed)
        else:
            match = await self._match(session, analysed, reader)
            matched = match.bits & shown
            order = self._ranked(match, matched & allowed, query.sort)
            corrected = match.corrected
        counted_key = (analysed, reader, frozenset(query.filters.items()), query.hidden)
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
        page, next_cursor = page_of(order, query)
        record_ids = await self.cache.record_ids_of(session, page)
        return SearchResult(record_ids, total, facets, next_cursor, corrected)

    def _languages(self, asked: tuple[str, ...]) -> list[str]:
        """The languages a query is analysed in: the reader's, then those of the records the
        index holds (every analysed language while it holds none)."""
        if self.languages_seq != self.cache.seq:
            self.present = [
                language
                for language in analysis.LANGUAGES
                if self.cache.bits.get(("language", language))
            ]
            self.languages_seq = self.cache.seq
        return list(dict.fromkeys([*asked, *(self.present or analysis.LANGUAGES)]))

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

    async def _match(
        self, session: AsyncSession, analysed: AnalysedQuery, reader: str | None
    ) -> Match:
        """The index's matches of this query, kept for the next search of the same query
        while the index stays as it is (`FacetCache.seq`, brought up to date just before)."""
        dialect = (await session.connection()).dialect.name
        key = (dialect, analysed, reader)
        cached = self.matches.get(key)
        if cached is not None and cached.seq == self.cache.seq:
            self.matches.move_to_end(key)
            return cached
        # The same query asked again while it is being matched (many readers at once, a
        # popular search after a change): the second waits for the first's answer.
        loop = asyncio.get_running_loop()
        seq = self.cache.seq
        flight = self.in_flight.get(key)
        if flight is not None and flight[0] is loop and flight[1] == seq:
            waited = await asyncio.shield(flight[2])
            if waited is not None and waited.seq == seq:
                return waited
        # None for the others when this one fails: each then matches for itself
        done: asyncio.Future[Match | None] = loop.create_future()
        self.in_flight[key] = (loop, seq, done)
        match = None
        try:
            match = await self._new_match(session, dialect, analysed, reader, key)
        finally:
            done.set_result(match)
            if self.in_flight.get(key, (None, None, None))[2] is done:
                del self.in_flight[key]
        return match

    async def _new_match(
        self,
        session: AsyncSession,
        dialect: str,
        analysed: AnalysedQuery,
        reader: str | None,
        key: tuple[str, AnalysedQuery, str | None],
    ) -> Match:
        seq = self.cache.seq
        scores, bits, complete, corrected = await self._combined(session, dialect, analysed, reader)
        match = Match(seq, scores, bits, corrected=corrected, complete=complete)
        replaced = self.matches.pop(key, None)
        if replaced is not None:
            self.matches_kept -= len(replaced.scores)
        self.matches[key] = match
        self.matches_kept += len(scores)
        while len(self.matches) > MATCH_CACHE or (
            self.matches_kept > MATCH_CACHE_DOCUMENTS and self.matches
        ):
            self.matches_kept -= len(self.matches.popitem(last=False)[1].scores)
        return match

    async def _combined(
        self, session: AsyncSession, dialect: str, analysed: AnalysedQuery, reader: str | None
    ) -> tuple[dict[int, float], int, bool, str | None]:
        """Every word must match: in one of its forms (or as the prefix being typed), or, when
        it is part of a concept's name, through that concept. A document's score adds, word by
        word: found as typed, 1 + its full-text rank (saturated below 1); the concept named in
        the reader's language, 0.9; in another, 0.8; the document only filed under it, 0.5
        (see `NAMED_OWN` and the others). A document readable in the reader's language gains
        0.3."""
        words = list(analysed.words)
        runs: dict[tuple[int, int], list[Concept]] = {}
        for concept_match in find_concepts(analysed):
            runs.setdefault((concept_match.start, concept_match.end), []).append(
                concept_match.concept
            )
        naming = {i for start, end in runs for i in range(start, end)}
        found: list[Found] = []
        typed: list[str] = []
        corrected = False
        for i, word in enumerate(words):
            scores = await self._scores(session, dialect, word_expression(word, dialect))
            # a word matching nothing, as typed or as a concept's name: a typo?
            fixed = None if scores or i in naming else await self._correct(session, word.typed)
            if fixed is not None:
                fixed_word = QueryWord(fixed, frozenset({fixed}))
                scores = await self._scores(session, dialect, word_expression(fixed_word, dialect))
                corrected = corrected or bool(scores)
            typed.append(fixed if fixed is not None and scores else word.typed)
            found.append(scores)
        # per word: the documents a concept it names gives, with their value, and as a bitset
        # the documents filed under it (0.5)
        named: dict[int, dict[int, float]] = {}
        filed: dict[int, int] = {}
        for (start, end), concepts in runs.items():
            by_name = await self._named(session, dialect, concepts, reader)
            bits = 0
            for c in concepts:
                if c.facet is not None:
                    bits |= self.cache.bits.get((c.facet, c.code), 0)
            for i in range(start, end):
                merged = named.setdefault(i, {})
                for d, v in by_name.items():
                    if v > merged.get(d, 0.0):
                        merged[d] = v
                filed[i] = filed.get(i, 0) | bits
        readable = self.cache.bits.get(("language", reader), 0) if reader else 0
        if len(words) == 1 and not runs and not readable:
            # one word, naming no concept, no reader's language: its full-text ranks order it
            only = found[0]
            return only.scores, only.bits, only.complete, (" ".join(typed) if corrected else None)

        # the documents every word matches (as typed, or through a concept it names): one AND
        # of bitsets, rather than testing each candidate of the rarest word word by word
        survivors = -1
        for i in range(len(words)):
            possible = found[i].bits | filed.get(i, 0)
            if named.get(i):
                possible |= bitset(named[i], self.cache.size)
            survivors &= possible
        tables = {i: member_test(bits) for i, bits in filed.items() if bits}
        reader_table = member_test(readable) if readable else b""
        out: dict[int, float] = {}
        for d in members_of(survivors):
            score = 0.0
            for i in range(len(words)):
                rank = found[i].rank(d)
                if rank is not None:
                    score += 1.0 + rank / (rank + 1.0)
                    continue
                value = named.get(i, {}).get(d, 0.0)
                if i in tables and contains(tables[i], d):
                    value = value + FILED_TOO if value else FILED
                if not value:
                    break
                score += value
            else:
                if reader_table and contains(reader_table, d):
                    score += READABLE
                out[d] = score
        return out, bitset(out, self.cache.size), True, (" ".join(typed) if corrected else None)

    async def _named(
        self, session: AsyncSession, dialect: str, concepts: list[Concept], reader: str | None
    ) -> dict[int, float]:
        """The documents naming any of these concepts in any language: 0.9 when named in the
        reader's language, 0.8 in another."""
        out: dict[int, float] = {}
        for own, value in ((True, NAMED_OWN), (False, NAMED_OTHER)):
            phrases: list[Phrase] = []
            for c in concepts:
                for language, names in expansion(c).items():
                    if (language == reader) == own:
                        phrases += [p for p in names if p and p not in phrases]
            if not phrases:
                continue
            expression = names_expression(phrases, dialect)
            found = await self._scores(session, dialect, expression)
            for d in found.members():
                rank = found.scores.get(d, 0.0)
                out.setdefault(d, value + NAMED_RANK * rank / (rank + 1.0))
        return out

    async def _correct(self, session: AsyncSession, typed: str) -> str | None:
        """The index term a word matching nothing was meant as, from the index's own
        vocabulary (built at the first need, kept up to date with what changed since)."""
        if self.corrector is None or self.vocabulary_seq != self.cache.seq:
            with offloaded():  # the first build reads the whole vocabulary
                await self._vocabulary(session)
        assert self.corrector is not None
        return self.corrector.correct_stem(typed)

    async def _vocabulary(self, session: AsyncSession) -> None:
        """The index's terms with their document counts: all of them at the first need, then
        those of the documents changed since (a removed record's words stay, counted, until
        the process restarts: a correction may then find nothing, never a wrong record)."""
        seq = self.cache.seq
        if self.corrector is None:
            if (await session.connection()).dialect.name == "sqlite":
                sql = "SELECT term, doc FROM practice_fts_vocab"
            else:
                sql = (
                    "SELECT word, ndoc FROM ts_stat('SELECT tsv FROM search_document WHERE active')"
                )
            rows = (await session.execute(text(sql))).all()
            # some hundreds of thousands of keys: built beside the event loop, not on it
            vocabulary = {term: int(n) for term, n in rows}
            self.corrector = await asyncio.to_thread(Corrector, vocabulary)
        else:
            changed = await session.execute(
                select(SearchDocument.title_norm, SearchDocument.body_norm).where(
                    SearchDocument.seq > self.vocabulary_seq,
                    SearchDocument.seq <= seq,
                    SearchDocument.active,
                )
            )
            for title, body in changed:
                for term in set(f"{title} {body}".split()):
                    self.corrector.add(term)
        self.vocabulary_seq = seq

    async def _scores(self, session: AsyncSession, dialect: str, expression: str) -> Found:
        """One full-text match (a word's forms, a concept's names), kept while the index stays
        as it is: the words of one query come back in the next (a word typed on, a filter
        chosen, a second word added)."""
        key = (dialect, expression)
        kept = self.expressions.get(key)
        if kept is not None and kept[0] == self.cache.seq:
            self.expressions.move_to_end(key)
            return kept[1]
        scores = await self._match_text(session, dialect, expression)
        replaced = self.expressions.pop(key, None)
        if replaced is not None:
            self.expressions_held -= replaced[1].count
        self.expressions[key] = (self.cache.seq, scores)
        self.expressions_held += scores.count
        while len(self.expressions) > EXPRESSION_CACHE or (
            self.expressions_held > MATCH_CACHE_DOCUMENTS and len(self.expressions) > 1
        ):
            self.expressions_held -= self.expressions.popitem(last=False)[1][1].count
        return scores

    async def _match_text(self, session: AsyncSession, dialect: str, expression: str) -> Found:
        with offloaded():  # a short prefix matches much of the index: not on the event loop
            if dialect != "sqlite":
                return await self._match_postgresql(session, expression)
            params: dict[str, Any] = {"m": expression, "w": TITLE_WEIGHT, "n": RANK_ALL + 1}
            # counted first (no rank computed): a broad match is then ranked among its title
            # matches alone, without ranking `RANK_ALL` documents it would not keep, and a
            # match of nothing (a typo) ranks nothing
            count, doc_nos = (await session.execute(MATCHES_SQLITE, params)).one()
            if int(count) <= RANK_ALL:
                rows = scored(await _one(session, MATCH_SQLITE, params)) if count else []
                # sorted here: SQLite sorting them costs more than ranking them
                scores = Ranked(best_first(rows))
                return Found(bitset(scores, self.cache.size), scores, True, len(scores))
            params["m"] = f"title_norm : ({expression})"
            titles = Ranked(best_first(scored(await _one(session, MATCH_SQLITE_ALL, params))))
        bits = bitset(numbers(doc_nos), self.cache.size)
        return Found(bits, titles, False, int(count))

    async def _match_postgresql(self, session: AsyncSession, expression: str) -> Found:
        params = {"q": expression}
        count, doc_nos = (await session.execute(MATCHES_POSTGRESQL, params)).one()
        if int(count) <= RANK_ALL:
            scores = Ranked(scored(await _one(session, MATCH_POSTGRESQL, params)) if count else [])
            return Found(bitset(scores, self.cache.size), scores, True, len(scores))
        titles = Ranked(scored(await _one(session, MATCH_TITLES_POSTGRESQL, params)))
        return Found(bitset(numbers(doc_nos), self.cache.size), titles, False, int(count))

    def _newest_first(self, allowed: int) -> Order:
        """No text to rank by: newest first, walked lazily so page one stops early."""
        table = member_test(allowed)
        dates = self.cache.dates
        newest = self.cache.newest_first()
        return Order(
            key=lambda d: date_key(dates[d], d),
            candidates=(d for d in newest if contains(table, d)),
            presorted=True,
        )

    def _ranked(self, match: Match, hits: int, sort: str) -> Order:
        if sort == "date":
            dates = self.cache.dates
            return Order(lambda d: date_key(dates[d], d), members_of(hits), presorted=False)
        return Order(match.key, match.ranked(hits), presorted=True)

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
        with collector_paused():
            write_documents(session, documents, {r: row.doc_no for r, row in existing.items()}, seq)
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
                _fts_delete_many(session, [doc])
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
            # Emptied, counts and all. ('rebuild' read every row of `search_document` back,
            # each now empty, into the index's document count: the records indexed again
            # were then counted twice, and BM25 ranked with the wrong averages.)
            session.execute(text("INSERT INTO practice_fts(practice_fts) VALUES ('delete-all')"))
        mark_analysed(session)  # what is indexed from now on is analysed by this code


async def _one(session: AsyncSession, statement: Any, params: dict[str, Any]) -> Any:
    return (await session.execute(statement, params)).scalar()


def scored(joined: str | None) -> list[tuple[int, float]]:
    """The (document, score) pairs of a "doc,score,doc,score" string (none for NULL)."""
    flat = json.loads(f"[{joined}]") if joined else []
    pairs = iter(flat)
    return list(zip(pairs, pairs, strict=True))


def analysis_current(session: Session) -> bool:
    """Whether the index was made with this code's analysis (`analysis.ANALYSIS_VERSION`)."""
    version = session.scalar(select(SearchState.analysis_version).where(SearchState.id == 1))
    return version == analysis.ANALYSIS_VERSION


def mark_analysed(session: Session) -> None:
    """The index is (being) rebuilt with this code's analysis."""
    session.execute(
        update(SearchState)
        .where(SearchState.id == 1)
        .values(analysis_version=analysis.ANALYSIS_VERSION)
    )


def _next_seq(session: Session) -> int:
    session.execute(update(SearchState).where(SearchState.id == 1).values(seq=SearchState.seq + 1))
    return int(session.scalar(select(SearchState.seq).where(SearchState.id == 1)) or 0)


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
