"""Bulk indexing finds what indexing one by one finds, a reindex what a fresh index finds, and
migrations 0025 (fewer prefix indexes on SQLite, one facet index fewer) and 0027 (the `ascii`
tokenizer) keep an existing index finding the same: the same hits, order, counts and
corrections."""

import itertools
import random
import uuid
from datetime import date

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from node.core.db import create_engine as create_async_engine
from node.core.db import session_factory
from node.core.settings import async_url, sync_url
from practices.search.port import IndexDocument, SearchQuery, SearchResult
from practices.search.sql import SqlSearch
from tests.conftest import Database, migrate

pytestmark = pytest.mark.anyio

TEXTS = [
    ("pt", "Reinserção de reclusos", "Formação profissional nos estabelecimentos prisionais."),
    ("pt", "Reclusos e famílias", "Acompanhamento das famílias dos reclusos em reclusão."),
    ("fr", "Réinsertion des détenus", "Accompagnement des détenus radicalisés en détention."),
    ("en", "Mentoring after prison", "Mentors meet released prisoners every week."),
    ("el", "Κοινωνική επανένταξη", "Εκπαίδευση στη φυλακή και μετά την αποφυλάκιση."),
    ("bg", "Ресоциализация в затвора", "Обучение и наставничество в затворите."),
    ("en", "Withdrawn mentoring practice", "Removed: its words must not be found."),
]
QUERIES = [
    "reclusos",
    "recl",  # 4 letters: the prefix index dropped
    "rec",
    "re",
    "reclu",
    "détenu",
    "mentor",
    "mentoring prison",
    "φυλακές",
    "затвор",
    "acompanhamemto",  # a typo, corrected against the index's vocabulary
    "withdrawn",
]


async def answers(db: str, queries: list[SearchQuery] | None = None) -> list[SearchResult]:
    engine = create_async_engine(async_url(db))
    try:
        async with session_factory(engine)() as session:
            search = SqlSearch()
            asked = queries or [SearchQuery(text=q) for q in QUERIES]
            return [await search.search(session, query) for query in asked]
    finally:
        await engine.dispose()


def index(db: str, batches: list[list[IndexDocument]]) -> None:
    engine = create_engine(sync_url(db))
    with Session(engine) as session:
        search = SqlSearch()
        for batch in batches:
            search.upsert(session, batch)
        session.commit()
    engine.dispose()


async def test_a_large_batch_indexed_in_chunks_finds_what_one_by_one_finds(
    database: Database,
) -> None:
    """A batch of more than one chunk (`indexing.ANALYSED_TOGETHER`; on SQLite the full-text
    rows written beside the next chunk's analysis) gives the same answers as the same
    documents indexed a few at a time, new and then indexed again with other words."""
    rng = random.Random(16)
    words = [language_text for _, *texts in TEXTS[:-1] for language_text in texts]
    vocabulary = " ".join(words).split()

    def documents(ids: list[uuid.UUID]) -> list[IndexDocument]:
        out = []
        for i, record_id in enumerate(ids):
            language, title, _ = TEXTS[i % (len(TEXTS) - 1)]
            body = " ".join(rng.choices(vocabulary, k=30))
            out.append(
                IndexDocument(
                    record_id=record_id,
                    title=title,
                    title_text=title,
                    body_text=body,
                    sort_date=date(2020, 1, 1 + i % 28),
                    # values beyond ASCII, and JSON's own characters: the facet rows
                    # travel as JSON on SQLite
                    facets={
                        "language": [language],
                        "source": ["local"],
                        "setting": ["prison", 'ló"\\😀 {}[],:'][: 1 + i % 2],
                    },
                    texts=((language, title, body),),
                )
            )
        return out

    ids = [uuid.uuid4() for _ in range(700)]
    first, second = documents(ids), documents(ids[::-1])  # again, other words, another order
    together, few = database.fresh_copy(), database.fresh_copy()
    index(together, [first])
    index(few, [first[i : i + 50] for i in range(0, len(first), 50)])
    queries = [SearchQuery(text=q, limit=50) for q in QUERIES] + [
        SearchQuery(text=w, limit=50) for w in rng.sample(vocabulary, 20)
    ]
    assert await answers(together, queries) == await answers(few, queries)
    counted = (await answers(together, [SearchQuery()]))[0].facets["setting"]
    assert counted == {"prison": 700, 'ló"\\😀 {}[],:': 350}
    index(together, [second])
    index(few, [second[i : i + 50] for i in range(0, len(second), 50)])
    assert await answers(together, queries) == await answers(few, queries)


async def test_an_index_made_before_migrations_0025_and_0027_finds_the_same_after_them(
    database: Database,
) -> None:
    """On SQLite the full-text index is made again by both: prefixes of 2 and 3 letters
    (0025), the `ascii` tokenizer over the analysed terms (0027)."""
    db = database.fresh_copy()
    migrate(db, "0024", down=True)
    documents = [
        IndexDocument(
            record_id=uuid.uuid4(),
            title=title,
            title_text=title,
            body_text=body,
            sort_date=date(2020, 1, 1 + i),
            facets={"language": [language], "source": ["local"], "kind": ["practice"]},
            texts=((language, title, body),),
        )
        for i, (language, title, body) in enumerate(TEXTS)
    ]
    engine = create_engine(sync_url(db))
    with Session(engine) as session:
        search = SqlSearch()
        search.upsert(session, documents)
        search.remove(session, [documents[-1].record_id])
        session.commit()
    engine.dispose()

    before = await answers(db)
    assert before[1].record_ids == [documents[1].record_id, documents[0].record_id]
    assert before[-1].total == 0  # the removed document is out
    migrate(db, "head")
    after = await answers(db)

    assert after == before
    assert after[10].corrected == "acompanh" and after[10].total == 1  # its stem
    if db.startswith("sqlite"):
        engine = create_engine(sync_url(db))
        with engine.connect() as connection:
            made = connection.scalar(
                text("SELECT sql FROM sqlite_master WHERE name = 'practice_fts'")
            )
            terms = connection.scalar(text("SELECT count(*) FROM practice_fts_vocab"))
        engine.dispose()
        assert "prefix='2 3'" in str(made) and "tokenize='ascii'" in str(made) and terms


async def test_a_reindex_ranks_and_counts_as_a_fresh_index(database: Database) -> None:
    """Clearing the index and indexing every record again (`integra search reindex`, a new
    analysis at start-up) leaves what a fresh index holds: on SQLite, no document is counted
    twice by the full-text statistics BM25 ranks with, so the order of the hits is the same."""
    rng = random.Random(20)
    words = "prison probation mentor family training housing dialogue youth".split()

    def documents(count: int) -> list[IndexDocument]:
        out = []
        for i in range(count):
            # lengths and repeats vary widely: BM25 weighs both against the index's averages
            body = " ".join(rng.choices(words, k=rng.choice([3, 8, 40, 120])))
            out.append(
                IndexDocument(
                    record_id=uuid.UUID(int=i + 1),
                    title=f"Practice {i}",
                    title_text=f"Practice {i}",
                    body_text=body,
                    sort_date=date(2020, 1, 1),  # one date: the order is the ranking's alone
                    facets={"language": ["en"], "source": ["local"]},
                    texts=(("en", f"Practice {i}", body),),
                )
            )
        return out

    first, again = documents(120), documents(120)
    queries = [SearchQuery(text=w, limit=100) for w in words] + [
        SearchQuery(text=f"{a} {b}", limit=100) for a, b in itertools.pairwise(words)
    ]
    fresh, reindexed = database.fresh_copy(), database.fresh_copy()
    index(reindexed, [first])
    engine = create_engine(sync_url(reindexed))
    with Session(engine) as session:
        search = SqlSearch()
        search.clear(session)  # as `reindex_all` does, then the records again
        search.upsert(session, again[:80])  # fewer: some records no longer published
        session.commit()
    engine.dispose()
    index(fresh, [again[:80]])

    assert await answers(reindexed, queries) == await answers(fresh, queries)


async def test_an_index_reindexed_before_migration_0026_ranks_as_a_fresh_one_after_it(
    database: Database,
) -> None:
    """An index cleared the way the code before 0026 cleared it (every row emptied, then
    FTS5's 'rebuild': each counted as a document) and indexed again: the migration counts
    its documents again, and it ranks as a fresh index does."""
    documents = [
        IndexDocument(
            record_id=uuid.UUID(int=i + 1),
            title=f"Practice {i}",
            title_text=f"Practice {i}",
            body_text=body,
            sort_date=date(2020, 1, 1),
            facets={"language": ["en"], "source": ["local"]},
            texts=(("en", f"Practice {i}", body),),
        )
        for i, body in enumerate(
            ["prison " * n + "probation " * (12 - n) + "mentor " * (n % 5) for n in range(12)]
        )
    ]
    queries = [SearchQuery(text=w, limit=50) for w in ("prison", "probation", "mentor prison")]
    fresh, old = database.fresh_copy(), database.fresh_copy()
    index(fresh, [documents])
    index(old, [documents])
    engine = create_engine(sync_url(old))
    with Session(engine) as session:
        if old.startswith("sqlite"):  # the clear of before
            session.execute(
                text("UPDATE search_document SET active = false, title_norm = '', body_norm = ''")
            )
            session.execute(text("INSERT INTO practice_fts(practice_fts) VALUES ('rebuild')"))
        SqlSearch().upsert(session, documents)
        session.commit()
    engine.dispose()
    if old.startswith("sqlite"):
        assert await answers(old, queries) != await answers(fresh, queries)  # ranked apart
    migrate(old, "0025", down=True)
    migrate(old, "head")
    assert await answers(old, queries) == await answers(fresh, queries)
