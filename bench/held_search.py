"""What hiding held records from anonymous readers costs a search (embedded default).

    python bench/held_search.py [--records 20000] [--queries 300] [--held 50]

Generates synthetic published practices as `bench/search.py` does, marks `--held` of them as
held by the personal-data gate, indexes them, then runs the same query mix through the search
service twice per query, alternating: as a signed-in reader (nothing hidden) and as an
anonymous one (the held records looked up and left out of the hits, the total and every facet
count). Prints both latency distributions and checks the anonymous totals left them out.
Nothing here is a pass/fail test: it prints figures.
"""

import argparse
import asyncio
import random
import statistics

# ruff: noqa: E402 - the project imports after the sys.path fix.
import sys
import tempfile
import time
import uuid
from pathlib import Path

# bench/http.py would stand for the standard `http` module (httpx needs it) if this
# folder stayed first on sys.path, as it is when a script here runs.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from bench.search import generate, percentile, query_mix
from node import migrations
from node.core.auth import Principal
from node.core.db import create_engine, create_sync_engine, session_factory
from node.core.outbox import JobContext
from node.core.settings import async_url
from practices.models import Practice, PracticeTerm
from practices.search import service
from practices.search.port import SearchQuery
from practices.search.sql import SqlSearch
from practices.tasks import reindex_all

SIGNED_IN = Principal(role="practitioner", label="bench", user_id=uuid.uuid4())


async def timed(url: str, queries: list[SearchQuery]) -> dict[str, list[float]]:
    engine = create_engine(async_url(url))
    backend = SqlSearch()
    times: dict[str, list[float]] = {"signed in": [], "anonymous": []}
    hidden_total = 0
    async with session_factory(engine)() as session:
        await backend.search(session, SearchQuery())  # loads the facet cache once
        for query in queries:
            for label, by in (("signed in", SIGNED_IN), ("anonymous", None)):
                started = time.perf_counter()
                found = await service.search(session, backend, service.LOCAL, query, by=by)
                times[label].append((time.perf_counter() - started) * 1000)
                hidden_total += found.total if by else -found.total
    await engine.dispose()
    print(f"records left out        {hidden_total:,} over all queries (0 means none held)")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--held", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrations.upgrade(url)
        engine = create_sync_engine(url)
        practices, terms, vocab = generate(args.records)
        held = [p["id"] for p in random.Random(5).sample(practices, args.held)]
        with Session(engine) as session:
            for start in range(0, len(practices), 5000):
                session.execute(insert(Practice), practices[start : start + 5000])
            for start in range(0, len(terms), 20000):
                session.execute(insert(PracticeTerm), terms[start : start + 20000])
            session.execute(update(Practice).where(Practice.id.in_(held)).values(held=True))
            reindex_all(session, JobContext(search=SqlSearch()))
            session.commit()
        engine.dispose()
        times = asyncio.run(timed(url, query_mix(random.Random(11), vocab, args.queries)))
    print(f"records / held          {args.records:,} / {args.held:,}")
    for label, values in times.items():
        print(
            f"{label:<23} p50 / p95 {percentile(values, 50):.2f} / {percentile(values, 95):.2f}"
            f" ms, mean {statistics.fmean(values):.2f} ms"
        )


if __name__ == "__main__":
    main()
