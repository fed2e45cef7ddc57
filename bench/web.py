"""Web benchmark: rendering the search page with its facets, and the page's weight.

    python bench/web.py [--records 100000] [--pages 500]

Seeds N synthetic published practices into a fresh SQLite file exactly as `bench/search.py`
does (its generator, the same path as `integra search reindex`), builds the node's app and
requests the search page through it in this process (ASGI, no socket: the figure is the
server's time, from the request to the last byte of the page, with the facet sidebar, the
labels in the reader's language and the snippets), with the mix of `bench/search.py` as URLs
(`/?q=…&country=…&setting=…`) and the bare landing page, in the five languages in turn. Then
the page's weight as a browser loads it: the HTML, the style sheet and htmx (no images), each
as sent with and without gzip. Nothing here is a pass/fail test: it prints figures.
"""

# ruff: noqa: E402 - the project imports after the sys.path fix.
import sys
from pathlib import Path

# bench/http.py shadows the standard `http` module when this folder is first on sys.path (it
# is when this file runs as a script): take the folder off and put the checkout's root first.
BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(BENCH.parent))

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from sqlalchemy import insert
from sqlalchemy.orm import Session

from bench.search import generate, percentile, query_mix
from node import migrations
from node.app import create_app
from node.core.db import create_sync_engine
from node.core.outbox import JobContext
from node.core.settings import Settings
from node.web.i18n import LANGUAGES
from practices.models import Practice, PracticeTerm
from practices.search.sql import SqlSearch
from practices.tasks import reindex_all

ASSETS = ("/static/app.css", "/static/htmx.min.js")


@dataclass
class Figures:
    warmup: float  # seconds
    latencies: list[float]  # ms
    sizes: list[int]  # bytes of HTML
    weight: dict[str, tuple[int, int]]  # path: (bytes, bytes gzipped)


def urls(records: int, pages: int) -> list[str]:
    """The query mix of bench/search.py as search-page URLs, and every tenth the bare page."""
    _, _, vocab = generate(min(records, 1))  # the same vocabulary (seeded), not the records
    out = []
    for i, query in enumerate(query_mix(random.Random(11), vocab, pages)):
        params: list[tuple[str, str]] = [("q", query.text)] if query.text.strip() else []
        params += [(f, v) for f, values in sorted(query.filters.items()) for v in sorted(values)]
        out.append("/" if i % 10 == 9 else "/?" + urlencode(params))
    return out


def seed(url: str, records: int) -> tuple[float, float]:
    migrations.upgrade(url)
    engine = create_sync_engine(url)
    practices, terms, _ = generate(records)
    started = time.perf_counter()
    with Session(engine) as session:
        for start in range(0, len(practices), 5000):
            session.execute(insert(Practice), practices[start : start + 5000])
        for start in range(0, len(terms), 20000):
            session.execute(insert(PracticeTerm), terms[start : start + 20000])
        session.commit()
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    with Session(engine) as session:
        reindex_all(session, JobContext(search=SqlSearch()))
        session.commit()
    engine.dispose()
    return loaded, time.perf_counter() - started


async def measure(settings: Settings, targets: list[str]) -> Figures:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://node.bench") as client:
        started = time.perf_counter()
        first = await client.get("/")  # loads the facet cache, as the server does at start
        assert first.status_code == 200, first.text[:500]
        warmup = time.perf_counter() - started
        latencies, sizes = [], []
        for i, target in enumerate(targets):
            language = list(LANGUAGES)[i % len(LANGUAGES)]
            began = time.perf_counter()
            page = await client.get(target, headers={"Accept-Language": language})
            latencies.append((time.perf_counter() - began) * 1000)
            assert page.status_code == 200, (target, page.status_code)
            sizes.append(len(page.content))
        weight: dict[str, tuple[int, int]] = {}
        for path in ("/", *ASSETS):
            plain = await client.get(path, headers={"Accept-Encoding": "identity"})
            gzipped = await client.get(path, headers={"Accept-Encoding": "gzip"})
            weight[path] = (len(plain.content), gzipped.num_bytes_downloaded)
    await app.state.engine.dispose()
    return Figures(warmup, latencies, sizes, weight)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=500, help="search pages rendered")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        loaded, indexing = seed(url, args.records)
        settings = Settings(database_url=url, data_dir=Path(tmp))
        figures = asyncio.run(measure(settings, urls(args.records, args.pages)))

    latencies, sizes, weight = figures.latencies, figures.sizes, figures.weight
    print(f"records                 {args.records:,} (loaded {loaded:.1f} s, not counted)")
    print(f"indexing                {indexing:.1f} s (not counted)")
    print(f"first page (warm-up)    {figures.warmup * 1000:.0f} ms, facet cache loaded")
    print(f"search pages rendered   {len(latencies):,}, facets and labels in 5 languages")
    print(
        f"server time p50 / p95 / p99 {percentile(latencies, 50):.1f} / "
        f"{percentile(latencies, 95):.1f} / {percentile(latencies, 99):.1f} ms   goal p95 <= 100"
    )
    print(f"mean                    {statistics.fmean(latencies):.1f} ms")
    print(f"HTML per page           median {statistics.median(sizes) / 1000:.1f} kB (uncompressed)")
    total_plain = sum(plain for plain, _ in weight.values())
    total_gzip = sum(gzipped for _, gzipped in weight.values())
    for path, (plain, gzipped) in weight.items():
        print(f"  {path:<22} {plain / 1000:6.1f} kB, gzip {gzipped / 1000:5.1f} kB")
    print(
        f"page weight (no images) {total_plain / 1000:.1f} kB uncompressed, "
        f"{total_gzip / 1000:.1f} kB gzip   goal <= 100 kB"
    )


if __name__ == "__main__":
    main()
