"""What the SQL adapter's full-text matches are in memory: a match's scores and bitset
(`Match`, `Found`, `Ranked`), a ranking cut into keyset pages (`Order`, `page_of`), the
full-text expressions of a query word or a concept's names, and the members of a bitset."""

import heapq
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from operator import itemgetter
from typing import Any

from node.core.errors import InvalidInput
from node.core.pagination import decode_cursor, encode_cursor
from practices.search.analysis import QueryWord
from practices.search.concepts import Phrase
from practices.search.facets import bitset, contains, member_test
from practices.search.port import SearchQuery

UNRANKED = -1.0  # below any rank: a document matching unranked (`Found`), in `Match.key`

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


def page_of(order: Order, query: SearchQuery) -> tuple[list[int], str | None]:
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
    # Every match has a score; else (a very broad word, `Found`) those without one come after
    # the others, by number.
    complete: bool = True
    ranked_bits: int | None = None

    def ranked(self, hits: int) -> Iterator[int]:
        """These documents (some of the matches), best first."""
        if self.best_first is None:
            scores = self.scores
            if isinstance(scores, Ranked):  # as the database ranked them
                self.best_first = list(scores)
            else:
                # by number, then (a stable sort, reversed: equal scores keep that order) by
                # score: two sorts on C-level keys, not a key tuple built per document
                best_first = sorted(scores)
                best_first.sort(key=scores.__getitem__, reverse=True)
                self.best_first = best_first
        table = member_test(hits)
        ranked = (d for d in self.best_first if contains(table, d))
        if self.complete:
            return ranked
        if self.ranked_bits is None:
            self.ranked_bits = bitset(self.scores, self.bits.bit_length())
        return chain(ranked, each_member(hits & ~self.ranked_bits))

    def key(self, doc_no: int) -> Key:
        return (-self.scores.get(doc_no, UNRANKED), doc_no)


class Ranked(dict[int, float]):
    """Scores in rank order already (best first, then by document number), as the database
    sorted them: a one-word query's ranking costs no sort in Python."""


@dataclass
class Found:
    """One full-text match (a word's forms, a concept's names): every matching document as a
    bitset, and their ranks, best first. A match of more than `RANK_ALL` documents (a prefix of
    three letters, a word in one record of five) is ranked among those matching in a title
    only, the others counting as rank 0 below them: ranking tens of thousands of documents
    costs more than the rest of a search, and says little (such a word weighs next to
    nothing in BM25)."""

    bits: int
    scores: Ranked
    complete: bool
    count: int
    table: bytes | None = None

    def __bool__(self) -> bool:
        return self.count > 0

    def rank(self, doc_no: int) -> float | None:
        """The document's rank; 0 when it matches unranked; None when it does not match."""
        rank = self.scores.get(doc_no)
        if rank is not None or self.complete:
            return rank
        if self.table is None:
            self.table = member_test(self.bits)
        return 0.0 if contains(self.table, doc_no) else None

    def members(self) -> Iterable[int]:
        return self.scores if self.complete else members_of(self.bits)


def word_expression(word: QueryWord, dialect: str) -> str:
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


def names_expression(phrases: list[Phrase], dialect: str) -> str:
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


def each_member(bits: int) -> Iterator[int]:
    """The document numbers of a bitset, in order, as they are asked for."""
    for index, byte in enumerate(member_test(bits)):
        while byte:
            low = byte & -byte
            yield index * 8 + low.bit_length() - 1
            byte ^= low


def members_of(bits: int) -> list[int]:
    """The document numbers of a bitset."""
    out = []
    for index, byte in enumerate(member_test(bits)):
        while byte:
            low = byte & -byte
            out.append(index * 8 + low.bit_length() - 1)
            byte ^= low
    return out


def best_first(rows: Sequence[Any]) -> list[Any]:
    """(document, score) rows by score, best first, then by document number: two stable
    sorts on C-level keys (the first one over rows that come in document order already costs
    one pass), where a key tuple built per row cost a Python call each."""
    ordered = sorted(rows, key=_DOCUMENT)
    ordered.sort(key=_SCORE, reverse=True)  # reverse keeps equal scores in document order
    return ordered


_DOCUMENT = itemgetter(0)
_SCORE = itemgetter(1)
