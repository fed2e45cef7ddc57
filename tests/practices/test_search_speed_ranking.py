"""The SQL adapter's cheaper bookkeeping gives the same answers as before (issue 16's speed)."""

import random
import uuid
from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from practices.search import sql
from practices.search.facets import bitset, date_key, numbers
from practices.search.matches import Found, Ranked, best_first
from practices.search.port import IndexDocument, SearchQuery
from practices.search.sql import SqlSearch

pytestmark = pytest.mark.anyio


def test_matches_comebest_first_then_by_document_number_ties_included() -> None:
    rng = random.Random(3)
    # rows as FTS5 gives them: in document order, with many equal scores (BM25 of one-word
    # texts), a -0.0 among zeros
    rows = [(d, rng.choice([0.0, -0.0, 0.5, 1.25, 1.25, 3.0])) for d in range(1, 400)]
    expected = sorted(rows, key=lambda row: (-row[1], row[0]))
    assert best_first(rows) == expected
    # and whatever order the rows come in
    shuffled = rows[:]
    rng.shuffle(shuffled)
    assert best_first(shuffled) == expected


async def test_a_full_text_match_kept_while_the_caches_hold_room_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The documents the kept matches hold are counted as they change: the oldest go once
    there are too many, a match read again is not counted twice."""
    monkeypatch.setattr(sql, "MATCH_CACHE_DOCUMENTS", 10)
    search = SqlSearch()
    asked: list[str] = []

    async def match_text(session: object, dialect: str, expression: str) -> Found:
        asked.append(expression)
        n = int(expression[1:])
        return Found(0, Ranked(dict.fromkeys(range(n), 1.0)), True, n)

    monkeypatch.setattr(search, "_match_text", match_text)
    for expression in ("a4", "b4", "a4", "c4"):  # a4 the second time: kept
        await search._scores(None, "sqlite", expression)  # type: ignore[arg-type]
    assert asked == ["a4", "b4", "c4"]
    assert [key[1] for key in search.expressions] == ["a4", "c4"]  # b4 the oldest asked
    assert search.expressions_held == 8

    search.cache.seq += 1  # the index changed: a4 matched again, replacing the stale one
    await search._scores(None, "sqlite", "a4")  # type: ignore[arg-type]
    assert asked[-1] == "a4" and search.expressions_held == 8
    assert search.expressions_held == sum(v[1].count for v in search.expressions.values())


def test_a_bitset_is_the_same_whether_its_documents_are_few_or_many() -> None:
    rng = random.Random(5)
    for size, n in ((1000, 10), (1000, 500), (1000, 1000), (64, 64), (0, 0)):
        docs = sorted(rng.sample(range(1, size + 1), n)) if n else []
        one_by_one = 0
        for d in docs:
            one_by_one |= 1 << d
        assert bitset(docs, size) == one_by_one  # a list: the dense path when many
        assert bitset(iter(docs), size) == one_by_one  # not a list: bit by bit
        assert bitset(docs) == one_by_one  # size unknown: grown as needed
    assert numbers("3,1,20") == [3, 1, 20] and numbers(None) == []


async def test_the_first_search_loads_every_document_newest_first(
    session: AsyncSession,
) -> None:
    """The facet cache read whole (numbers and dates as strings, sorted in Python): newest
    first, equal dates by document number (highest first), undated last, on both
    databases; its facet counts those of the documents."""
    days = [date(2024, 5, 1), None, date(2025, 1, 2), date(2024, 5, 1), None, date(2020, 3, 3)]
    documents = [
        IndexDocument(
            record_id=uuid.uuid4(),
            title=f"Document {i}",
            title_text=f"Document {i}",
            body_text="mentoring",
            sort_date=day,
            facets={"country": ["PT" if i % 2 else "FR"], "source": ["local"]},
        )
        for i, day in enumerate(days)
    ]
    search = SqlSearch()
    await session.run_sync(lambda s: search.upsert(s, documents))
    result = await search.search(session, SearchQuery(filters={"source": frozenset({"local"})}))

    cache = search.cache
    numbered = {d.record_id: i for i, d in enumerate(documents)}
    assert sorted(map(numbered.__getitem__, result.record_ids)) == list(range(len(days)))
    assert result.total == len(days)
    assert cache.by_date == sorted(cache.dates, key=lambda d: date_key(cache.dates[d], d))
    shown_days = [days[numbered[r]] for r in result.record_ids]
    assert shown_days == sorted(days, key=lambda d: d or date.min, reverse=True)
    # equal dates: the later indexed (the higher document number) first
    assert [numbered[r] for r in result.record_ids] == [2, 3, 0, 5, 4, 1]
    assert result.facets["country"] == {"FR": 3, "PT": 3}
    assert cache.active.bit_count() == len(days)
