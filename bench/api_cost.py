"""What one API request costs the server, in process: CPU milliseconds per request by endpoint.

    python bench/api_cost.py [--database PATH] [--requests 400] [--concurrency 16]
                             [--profile ENDPOINT] [--top 30]

Runs the node's app in this process on a copy of a database `bench/http.py` seeded (its SQLite
cache by default), sends each endpoint's request ``--requests`` times, ``--concurrency`` at a
time, straight into the ASGI app (no client, no network, no server), and prints the process's CPU
time per request. CPU time, not wall time: it moves less when other work shares the machine,
so it is the figure to compare between two versions of the code. ``--profile NAME`` runs that
endpoint under cProfile and prints the functions that cost most. Nothing here is a pass/fail
test.
"""

# ruff: noqa: E402 - the project imports after the environment is set.
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(BENCH.parent))

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import shutil
import tempfile
import time
from typing import Any

CACHE = Path(tempfile.gettempdir()) / "integra-bench-http" / "node-p100000-o5000-h20000-v1.db"


async def call(app: Any, url: str) -> tuple[int, bytes]:
    """One GET straight into the ASGI app, as a server would make it (no client, no socket)."""
    path, _, query = url.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"node"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def measure(app: Any, url: str, requests: int, concurrency: int) -> tuple[float, float]:
    """CPU and wall milliseconds per request."""
    queue = list(range(requests))

    async def worker() -> None:
        while queue:
            queue.pop()
            status, body = await call(app, url)
            if status != 200:
                raise SystemExit(f"{url}: {status} {body[:300]!r}")

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (
        (time.process_time() - cpu) * 1000 / requests,
        (time.perf_counter() - wall) * 1000 / requests,
    )


async def main(args: argparse.Namespace) -> None:
    from node.app import create_app
    from node.core.settings import get_settings

    app = create_app(get_settings())
    hit = json.loads((await call(app, "/api/v1/practices/search?limit=1"))[1])
    org = json.loads((await call(app, "/api/v1/organisations?limit=1"))[1])
    endpoints = {
        "health": "/healthz",
        "search-selective": "/api/v1/practices/search?q=prison+mentoring",
        "search-broad": "/api/v1/practices/search?q=re",
        "search-empty": "/api/v1/practices/search?q=",
        "practice": f"/api/v1/practices/{hit['items'][0]['id']}",
        "org-list": "/api/v1/organisations?limit=50",
        "org": f"/api/v1/organisations/{org['items'][0]['id']}",
    }
    chosen = args.only.split(",") if args.only else list(endpoints)
    print("| endpoint | CPU ms/request | wall ms/request |")
    print("| --- | ---: | ---: |")
    for name in chosen:
        url = endpoints[name]
        await measure(app, url, max(20, args.requests // 10), args.concurrency)  # warm
        profiler = cProfile.Profile() if name == args.profile else None
        if profiler is not None:
            profiler.enable()
        cpu, wall = await measure(app, url, args.requests, args.concurrency)
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
        print(f"| {name} | {cpu:.2f} | {wall:.2f} |", flush=True)


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=str(CACHE))
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--only", help="endpoints, comma-separated")
    parser.add_argument("--profile", help="the endpoint to profile")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-api-cost-") as tmp:
        copy = Path(tmp) / "node.db"
        shutil.copy(args.database, copy)
        env: dict[str, Any] = {
            "DATABASE_URL": f"sqlite:///{copy}",
            "INTEGRA_DATA_DIR": str(Path(tmp) / "data"),
        }
        for key in [k for k in os.environ if k.startswith("INTEGRA_")]:
            del os.environ[key]
        os.environ.update(env)
        from node import migrations

        migrations.upgrade(env["DATABASE_URL"])
        asyncio.run(main(args))


if __name__ == "__main__":
    run()
