"""Relevance benchmark: the judged query set against every search adapter this machine reaches.

    python bench/relevance.py [--queries tests/practices/relevance/queries.json]
                              [--adapters sqlite,postgresql,meilisearch,reference]
                              [--misses]

Loads the sample registry and practices (the files `integra sample load` reads) into a fresh
database per adapter, indexes them through the same path as `integra search reindex`, runs each
judged query through the search service (`practices.search.service.search`, as the API does,
anonymous reader, first page of ten) and prints recall@10 and MRR per language and overall for
each adapter. SQLite always; PostgreSQL when it answers at INTEGRA_TEST_PG_URL (default
postgresql://postgres@127.0.0.1:5432/postgres; a scratch database is created and dropped);
Meilisearch when MEILI_URL is set (its `practices` index is CLEARED and refilled: never point
this at a server whose index matters).

`--adapters reference` adds an in-memory reference of issue 16's design, as the adapters were
to reach it (the SQL adapter does, within a few ties): the sample analysed by
`practices.search.analysis` (each text in its language), query words in the reader's language
and the others, typos corrected against the index's own stems (`Corrector.correct_stem`),
concepts named in any language (`concepts.find_concepts`) matching records filed under them or
naming them in any language, and ranking: query words found as typed (title x4, BM25-like
saturation) > the concept named in the reader's language > named in another > only filed under
it; a small bonus for a record readable in the reader's language. It was the target of the
adapters' wiring, and is a quick way to judge a change to the analysis, the concepts or the
judged set without a database.

recall@10: the share of a query's expected records found in the first ten, averaged over the
queries. MRR: the mean of 1/rank of the first expected record in the first ten (0 if none).
`--misses` lists each query that misses an expected record. Nothing here is a pass/fail test:
it prints figures.
"""

# ruff: noqa: E402 - the project imports after the sys.path fix.
import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# bench/http.py would stand for the standard `http` module (httpx needs it) if this
# folder stayed first on sys.path, as it is when a script here runs.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from sqlalchemy import select
from sqlalchemy.orm import Session

from node import migrations
from node.core.auth import system_principal
from node.core.db import create_engine, create_sync_engine, session_factory
from node.core.outbox import JobContext
from node.core.settings import async_url
from practices import transfer as practice_transfer
from practices.models import Practice
from practices.search.port import SearchBackend, SearchQuery
from practices.search.service import LOCAL, facet_filters, search
from practices.search.sql import SqlSearch
from practices.tasks import reindex_all
from registry import transfer as registry_transfer

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT / "tests" / "practices" / "relevance" / "queries.json"
REGISTRY = ROOT / "registry" / "sample_data" / "registry.json"
PRACTICES = ROOT / "practices" / "sample_data" / "practices.json"
PG_ADMIN_URL = os.environ.get(
    "INTEGRA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
LANGUAGES = ("en", "fr", "pt", "el", "bg")
TOP = 10


@dataclass
class Judged:
    id: str
    language: str
    q: str
    filters: dict[str, list[str]]
    expect: list[str]
    tags: list[str] = field(default_factory=list)


def read_queries(path: Path) -> list[Judged]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        Judged(
            id=q["id"],
            language=q["language"],
            q=q["q"],
            filters=q.get("filters", {}),
            expect=q["expect"],
            tags=q.get("tags", []),
        )
        for q in data["queries"]
    ]


@dataclass
class Outcome:
    query: Judged
    found: list[str]  # refs of the first ten, in order

    @property
    def recall(self) -> float:
        return sum(ref in self.found for ref in self.query.expect) / len(self.query.expect)

    @property
    def reciprocal_rank(self) -> float:
        for rank, ref in enumerate(self.found, 1):
            if ref in self.query.expect:
                return 1 / rank
        return 0.0


async def load_sample(url: str) -> None:
    engine = create_engine(async_url(url))
    by = system_principal("relevance-bench")
    async with session_factory(engine)() as session:
        rows = registry_transfer.read_rows(REGISTRY.read_bytes(), "json")
        report = await registry_transfer.import_rows(session, rows, by=by, is_sample=True)
        if report.errors:
            raise SystemExit(f"sample registry did not load: {report.errors[:3]}")
        rows = practice_transfer.read_practice_rows(PRACTICES.read_bytes(), "json")
        report = await practice_transfer.import_practices(
            session, rows, by=by, is_sample=True, confirmed=True
        )
        if report.errors:
            raise SystemExit(f"sample practices did not load: {report.errors[:3]}")
        await session.commit()
    await engine.dispose()


def index(url: str, backend: SearchBackend) -> dict[uuid.UUID, str]:
    """Index every published practice; the refs of the records by id."""
    engine = create_sync_engine(url)
    with Session(engine) as session:
        reindex_all(session, JobContext(search=backend))
        session.commit()
        refs = {
            i: r for i, r in session.execute(select(Practice.id, Practice.ref)) if r is not None
        }
    engine.dispose()
    return refs


async def run_queries(
    url: str, backend: SearchBackend, refs: dict[uuid.UUID, str], queries: list[Judged]
) -> list[Outcome]:
    engine = create_engine(async_url(url))
    outcomes = []
    async with session_factory(engine)() as session:
        for judged in queries:
            query = SearchQuery(
                text=judged.q,
                filters=facet_filters(**judged.filters),
                limit=TOP,
                languages=(judged.language,),
            )
            results = await search(session, backend, LOCAL, query)
            outcomes.append(Outcome(judged, [refs.get(hit.id, "?") for hit in results.items]))
    await engine.dispose()
    return outcomes


def evaluate(
    url: str, make_backend: Callable[[], SearchBackend], queries: list[Judged]
) -> list[Outcome]:
    migrations.upgrade(url)
    asyncio.run(load_sample(url))
    backend = make_backend()
    refs = index(url, backend)
    return asyncio.run(run_queries(url, backend, refs, queries))


def report(adapter: str, outcomes: list[Outcome], misses: bool) -> None:
    by_language: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_language[outcome.query.language].append(outcome)
    print(f"\n{adapter}")
    print(f"  {'language':<9}{'queries':>8}{'recall@10':>11}{'MRR':>8}{'all found':>11}")
    rows = [(lang, by_language[lang]) for lang in LANGUAGES if by_language.get(lang)]
    rows.append(("overall", outcomes))
    for name, group in rows:
        recall = sum(o.recall for o in group) / len(group)
        mrr = sum(o.reciprocal_rank for o in group) / len(group)
        complete = sum(o.recall == 1 for o in group)
        print(f"  {name:<9}{len(group):>8}{recall:>11.3f}{mrr:>8.3f}{complete:>8}/{len(group)}")
    if misses:
        for o in outcomes:
            if o.recall < 1:
                missing = [r for r in o.query.expect if r not in o.found]
                print(f"  miss {o.query.id} {o.query.q!r} {o.query.filters or ''}: {missing}")


def sqlite(queries: list[Judged]) -> list[Outcome]:
    with tempfile.TemporaryDirectory() as tmp:
        return evaluate(f"sqlite:///{Path(tmp) / 'relevance.db'}", SqlSearch, queries)


def postgresql(queries: list[Judged]) -> list[Outcome] | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            name = f"relevance_{uuid.uuid4().hex[:10]}"
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        print(f"\npostgresql: not reached at {PG_ADMIN_URL} ({exc.__class__.__name__}), skipped")
        return None
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    try:
        return evaluate(f"{base}/{name}", SqlSearch, queries)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def meilisearch(queries: list[Judged]) -> list[Outcome] | None:
    url = os.environ.get("MEILI_URL")
    if not url:
        print("\nmeilisearch: MEILI_URL not set, skipped")
        return None
    from practices.search.meili import MeiliSearch

    key = os.environ.get("MEILI_MASTER_KEY")
    with tempfile.TemporaryDirectory() as tmp:
        return evaluate(
            f"sqlite:///{Path(tmp) / 'relevance.db'}", lambda: MeiliSearch(url, key), queries
        )


def reference(queries: list[Judged]) -> list[Outcome]:
    """The design of issue 16 in memory over the sample file (see the module's docstring)."""
    from collections import Counter

    from practices.search.analysis import LANGUAGES as ANALYSED
    from practices.search.analysis import analyse, query_terms
    from practices.search.concepts import Concept, expansion, find_concepts
    from practices.search.typos import Corrector

    body_fields = (
        "summary",
        "description",
        "problem_addressed",
        "rationale",
        "lessons_learned",
        "transferability",
    )
    records = []
    for p in json.loads(PRACTICES.read_text(encoding="utf-8"))["practices"]:
        if p["status"] != "published":
            continue
        language = p["language"]
        title = Counter(analyse(f"{p['title']} {p.get('original_title') or ''}", language))
        body = Counter(t for f in body_fields for t in analyse(p.get(f) or "", language))
        for t in p["translations"]:
            title.update(analyse(t.get("title") or "", t["language"]))
            body.update(analyse(t.get("summary") or "", t["language"]))
        facets = {
            "country": {p["country"]},
            "kind": {p["kind"]},
            "language": {language, *(t["language"] for t in p["translations"])},
            "intervention_type": set(p["intervention_types"]),
            "setting": set(p["settings"]),
            "target_group": set(p["target_groups"]),
            "process_focus": set(p["process_focus"]),
        }
        records.append((p["ref"], title, body, facets))
    docs = Counter(t for _, title, body, _ in records for t in {*title, *body})
    corrector = Corrector(dict(docs))
    idf = {t: math.log(1 + (len(records) - n + 0.5) / (n + 0.5)) for t, n in docs.items()}

    def named(
        concepts: list[Concept], terms: set[str], facets: dict[str, set[str]], reader: str
    ) -> float:
        best = 0.0
        for c in concepts:
            if c.facet and c.code in facets.get(c.facet, set()):
                best = max(best, 0.5)
            for language, phrases in expansion(c).items():
                if any(phrase and all(forms & terms for forms in phrase) for phrase in phrases):
                    best = max(best, 0.9 if language == reader else 0.8)
        return best

    outcomes = []
    for judged in queries:
        reader = judged.language
        analysed = query_terms(judged.q, [reader, *(x for x in ANALYSED if x != reader)])
        words = []
        for word in analysed.words:
            forms = set(word.forms)
            if not forms & docs.keys() and not (
                word.prefix and any(t.startswith(word.prefix) for t in docs)
            ):
                fixed = corrector.correct_stem(word.typed)
                forms = {fixed} if fixed else forms
            words.append((word, forms))
        runs: dict[tuple[int, int], list[Concept]] = defaultdict(list)
        for match in find_concepts(analysed):
            runs[(match.start, match.end)].append(match.concept)
        ranked = []
        for ref, title, body, facets in records:
            if any(not set(v) & facets.get(f, set()) for f, v in judged.filters.items()):
                continue
            terms = {*title, *body}
            covered: dict[int, float] = {}
            for (start, end), concepts in runs.items():
                value = named(concepts, terms, facets, reader)
                for i in range(start, end):
                    covered[i] = max(covered.get(i, 0.0), value)
            score, matched = 0.0, bool(words)
            for i, (word, forms) in enumerate(words):
                found = sum(4 * title.get(f, 0) + body.get(f, 0) for f in forms)
                if word.prefix and not found:
                    found = sum(4 * n for t, n in title.items() if t.startswith(word.prefix))
                    found += sum(n for t, n in body.items() if t.startswith(word.prefix))
                if found:
                    score += 1 + max(idf.get(f, 1.0) for f in forms) * found / (found + 1.2)
                elif covered.get(i):
                    score += covered[i]
                else:
                    matched = False
                    break
            if matched:
                ranked.append((-(score + (0.3 if reader in facets["language"] else 0)), ref))
        outcomes.append(Outcome(judged, [ref for _, ref in sorted(ranked)[:TOP]]))
    return outcomes


ADAPTERS: dict[str, Callable[[list[Judged]], list[Outcome] | None]] = {
    "sqlite": sqlite,
    "postgresql": postgresql,
    "meilisearch": meilisearch,
    "reference": reference,
}
DEFAULT_ADAPTERS = "sqlite,postgresql,meilisearch"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--queries", type=Path, default=QUERIES)
    parser.add_argument("--adapters", default=DEFAULT_ADAPTERS, help=f"of {', '.join(ADAPTERS)}")
    parser.add_argument("--misses", action="store_true", help="list the queries that miss")
    args = parser.parse_args(argv)
    queries = read_queries(args.queries)
    counts = {lang: sum(q.language == lang for q in queries) for lang in LANGUAGES}
    print(f"{len(queries)} judged queries: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for name in args.adapters.split(","):
        if name not in ADAPTERS:
            raise SystemExit(f"unknown adapter {name!r}; known: {', '.join(ADAPTERS)}")
        outcomes = ADAPTERS[name](queries)
        if outcomes is not None:
            report(name, outcomes, args.misses)


if __name__ == "__main__":
    main()
