"""The SQL adapter: SQLite FTS5 on the embedded default, PostgreSQL full text otherwise.

The index holds each text's word forms in its own language (`analysis.document_terms`); both
databases see them as plain tokens (FTS5 `unicode61`, PostgreSQL's `simple` configuration), so
that they agree and Bulgarian is analysed too. A query's words are analysed in the reader's
language and those of the records present, each matched by any of its forms; a run of words
naming a concept (`concepts.find_concepts`) also matches the records naming it in another
language or filed under it, ranked below; a word matching nothing is corrected against the
index's own terms (`typos.Corrector`). Each word is one full-text match in the database; the
words are combined, and facet filters and counts run, on the in-memory bitsets of
`FacetCache`, which both databases share.
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

from node.core.db import offloaded
from node.core.errors import InvalidInput
from node.core.pagination import decode_cursor, encode_cursor
from practices.search import analysis
from practices.search.analysis import AnalysedQuery, QueryWord, document_terms
from practices.search.concepts import Concept, Phrase, expansion, find_concepts
from practices.search.facets import FacetCache, bitset, contains, member_test
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
    corrected: str | None = None

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
EXPRESSION_CACHE = 256


class SqlSearch:
    name = "sql"

    def __init__(self) -> None:
        self.cache = FacetCache()
        self.matches: OrderedDict[tuple[str, AnalysedQuery, str | None], Match] = OrderedDict()
        # The total and facet counts of a query, at an index state: the same query again (a
        # next page, a popular search, the empty search's facets) counts nothing again.
        self.counted: OrderedDict[Any, tuple[int, int, dict[str, dict[str, int]]]] = OrderedDict()
        self.expressions: OrderedDict[tuple[str, str], tuple[int, dict[int, float]]] = OrderedDict()
        self.present: list[str] = []
        self.languages_seq = -1
        self.corrector: Corrector | None = None
        self.vocabulary_seq = -1

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
        page, next_cursor = _page(order, query)
        return SearchResult(
            [self.cache.record_ids[d] for d in page], total, facets, next_cursor, corrected
        )

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
        scores, corrected = await self._combined(session, dialect, analysed, reader)
        match = Match(self.cache.seq, scores, bitset(list(scores)), corrected=corrected)
        self.matches[key] = match
        self.matches.move_to_end(key)
        kept = sum(len(m.scores) for m in self.matches.values())
        while len(self.matches) > MATCH_CACHE or (kept > MATCH_CACHE_DOCUMENTS and self.matches):
            kept -= len(self.matches.popitem(last=False)[1].scores)
        return match

    async def _combined(
        self, session: AsyncSession, dialect: str, analysed: AnalysedQuery, reader: str | None
    ) -> tuple[dict[int, float], str | None]:
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
        found: list[dict[int, float]] = []
        typed: list[str] = []
        corrected = False
        for i, word in enumerate(words):
            scores = await self._scores(session, dialect, _word_expression(word, dialect))
            # a word matching nothing, as typed or as a concept's name: a typo?
            fixed = None if scores or i in naming else await self._correct(session, word.typed)
            if fixed is not None:
                fixed_word = QueryWord(fixed, frozenset({fixed}))
                scores = await self._scores(session, dialect, _word_expression(fixed_word, dialect))
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
            return found[0], (" ".join(typed) if corrected else None)

        def candidates(i: int) -> Iterable[int]:
            if i not in named and not filed.get(i):
                return found[i]
            return {*found[i], *named.get(i, {}), *_members(filed.get(i, 0))}

        sizes = [
            len(found[i]) + len(named.get(i, {})) + filed.get(i, 0).bit_count()
            for i in range(len(words))
        ]
        first = min(range(len(words)), key=sizes.__getitem__)
        tables = {i: member_test(bits) for i, bits in filed.items() if bits}
        reader_table = member_test(readable) if readable else b""
        out: dict[int, float] = {}
        for d in candidates(first):
            score = 0.0
            for i in range(len(words)):
                rank = found[i].get(d)
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
        return out, (" ".join(typed) if corrected else None)

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
            expression = _names_expression(phrases, dialect)
            for d, rank in (await self._scores(session, dialect, expression)).items():
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
            rows = await session.execute(text(sql))
            self.corrector = Corrector({term: int(n) for term, n in rows})
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

    async def _scores(
        self, session: AsyncSession, dialect: str, expression: str
    ) -> dict[int, float]:
        """One full-text match (a word's forms, a concept's names), kept while the index stays
        as it is: the words of one query come back in the next (a word typed on, a filter
        chosen, a second word added)."""
        key = (dialect, expression)
        kept = self.expressions.get(key)
        if kept is not None and kept[0] == self.cache.seq:
            self.expressions.move_to_end(key)
            return kept[1]
        scores = await self._match_text(session, dialect, expression)
        self.expressions[key] = (self.cache.seq, scores)
        self.expressions.move_to_end(key)
        held = sum(len(v[1]) for v in self.expressions.values())
        while len(self.expressions) > EXPRESSION_CACHE or (
            held > MATCH_CACHE_DOCUMENTS and len(self.expressions) > 1
        ):
            held -= len(self.expressions.popitem(last=False)[1][1])
        return scores

    async def _match_text(
        self, session: AsyncSession, dialect: str, expression: str
    ) -> dict[int, float]:
        if dialect == "sqlite":
            sql = text(
                "SELECT rowid, -bm25(practice_fts, :w, 1.0) FROM practice_fts "
                "WHERE practice_fts MATCH :m"
            )
            params: dict[str, Any] = {"m": expression, "w": TITLE_WEIGHT}
        else:
            sql = text(
                "SELECT doc_no, ts_rank_cd(tsv, q) FROM search_document, "
                "to_tsquery('simple', :q) q WHERE active AND tsv @@ q"
            )
            params = {"q": expression}
        with offloaded():  # a short prefix matches much of the index: not on the event loop
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
        analysed = {d.record_id: document_terms(d) for d in documents}
        rows = [
            {
                "record_id": d.record_id,
                "active": True,
                "seq": seq,
                "sort_date": d.sort_date,
                "title": d.title[:300],
                "title_norm": analysed[d.record_id][0][:MAX_INDEXED_TEXT],
                "body_norm": analysed[d.record_id][1][:MAX_INDEXED_TEXT],
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
        mark_analysed(session)  # what is indexed from now on is analysed by this code


def _word_expression(word: QueryWord, dialect: str) -> str:
    """A full-text expression matching any form of one query word (or its prefix, for the word
    being typed). Index forms are word characters only: quoted, nothing reads as syntax."""
    if dialect == "sqlite":
        parts = [f'"{f}"' for f in sorted(word.forms)]
        if word.prefix:
            parts.append(f'"{word.prefix}"*')
        return " OR ".join(parts)
    parts = [f"'{f}'" for f in sorted(word.forms)]
    if word.prefix:
        parts.append(f"'{word.prefix}':*")
    return " | ".join(parts)


def _names_expression(phrases: list[Phrase], dialect: str) -> str:
    """Any of these names, each a sequence of words (any of each word's forms), all present."""
    either, both, quote = (" OR ", " AND ", '"') if dialect == "sqlite" else (" | ", " & ", "'")
    return either.join(
        "("
        + both.join(
            "(" + either.join(f"{quote}{f}{quote}" for f in sorted(forms)) + ")" for forms in phrase
        )
        + ")"
        for phrase in phrases
    )


def _members(bits: int) -> list[int]:
    """The document numbers of a bitset."""
    out = []
    for index, byte in enumerate(member_test(bits)):
        while byte:
            low = byte & -byte
            out.append(index * 8 + low.bit_length() - 1)
            byte ^= low
    return out


def _date_key(day: date | None, doc_no: int) -> Key:
    """Newest first, undated last, then by document number: the same order as
    `FacetCache.newest_first`."""
    return (-(day.toordinal() if day else 0), -doc_no)


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
