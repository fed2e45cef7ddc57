"""Load: concurrent clients against a node and the hub for a fixed time, a realistic mix.

    python bench/load.py [--clients 50] [--seconds 30] [--workers 2] [--practices 100000]
                         [--organisations 5000] [--pool 20000] [--writes 0.05] [--sqlite]

On PostgreSQL (the default; `--sqlite` for the embedded database) with the seeded databases of
`bench/http.py` (cached, keyed by sizes: the first run seeds them, later ones start in
seconds), starts `integra serve --workers W` for a node and for a hub on copies of them, signs
an editor in, and lets C clients (keep-alive connections on loopback, each sending its next
request as soon as the last is answered) drive for S seconds a mix of the node's practice
search, practice and registry reads, writes (new draft practices, `--writes` of the requests),
and the hub's EU search. Prints requests/s, p50, p95 and p99 and errors (anything but the
expected status, or a broken connection) per endpoint. Nothing here is a pass/fail test: it
prints figures. The issue's goal: zero errors and search p95 <= 100 ms at 50 clients with
100,000 practices on two cores.
"""

# ruff: noqa: E402 - the standard library and the project import after the sys.path fix.
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(BENCH.parent))

import argparse
import asyncio
import importlib.util
import json
import os
import random
import subprocess
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx


def _bench_http() -> ModuleType:
    """bench/http.py (its seeding, servers and environment), imported by path: its name
    would shadow the standard library's `http`."""
    spec = importlib.util.spec_from_file_location("bench_http", BENCH / "http.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


QUERIES = [
    "prison",
    "mentoring",
    "prison mentoring",
    "re",
    "family",
    "education",
    "radical",
    "probation",
    "employment",
    "",
    "youth",
    "religious",
]
PASSWORD = "load bench editor passphrase"


@dataclass
class Endpoint:
    name: str
    weight: float
    expected: int
    method: str = "GET"
    targets: list[str] = field(default_factory=list)  # paths, one picked per request
    body: Any = None


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    sample_error: str = ""


class Connection:
    """One keep-alive HTTP/1.1 connection: a request written, its answer read (Content-Length
    or chunked). Cheap enough that 50 of them in one process measure the server, not httpx."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
        reused = self.writer is not None
        try:
            return await self._exchange(method, path, headers, body)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
            partial = getattr(exc, "partial", b"")
            if not reused or partial:
                raise
            # The server closed an idle keep-alive connection (uvicorn: after 5 s) just before
            # this request: what any HTTP client does is connect again and send it once more.
            await self.close()
            return await self._exchange(method, path, headers, body)

    async def _exchange(self, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None and self.writer is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        fields = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        if b"content-length" in fields:
            await self.reader.readexactly(int(fields[b"content-length"]))
        elif fields.get(b"transfer-encoding") == b"chunked":
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                await self.reader.readexactly(size + 2)
            await self.reader.readuntil(b"\r\n")
        if fields.get(b"connection") == b"close":
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = self.reader = None


async def client(
    bases: dict[str, str],
    endpoints: list[Endpoint],
    token: str,
    until: float,
    tallies: dict[str, Tally],
    seed: int,
) -> None:
    rng = random.Random(seed)
    connections = {name: Connection(base) for name, base in bases.items()}
    weights = [e.weight for e in endpoints]
    while time.monotonic() < until:
        endpoint = rng.choices(endpoints, weights)[0]
        side = "hub" if endpoint.name.startswith("hub") else "node"
        headers = {"Accept": "application/json"}
        body = b""
        if endpoint.method != "GET":
            headers |= {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            payload = dict(endpoint.body)
            payload["title"] = f"{payload['title']} {rng.randrange(10**9)}"
            body = json.dumps(payload).encode()
        began = time.perf_counter()
        tally = tallies[endpoint.name]
        try:
            status = await connections[side].request(
                endpoint.method, rng.choice(endpoint.targets), headers, body
            )
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            tally.errors += 1
            tally.sample_error = tally.sample_error or f"{type(exc).__name__}: {exc}"
            await connections[side].close()
            continue
        tally.latencies.append(time.perf_counter() - began)
        if status != endpoint.expected:
            tally.errors += 1
            tally.sample_error = tally.sample_error or f"status {status}"
    for connection in connections.values():
        await connection.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def endpoints(node: str, hub: str, writes: float) -> list[Endpoint]:
    """The mix, with real ids looked up from the running servers."""
    practices = httpx.get(f"{node}/api/v1/practices/search", params={"limit": 50}, timeout=300)
    organisations = httpx.get(f"{node}/api/v1/organisations", params={"limit": 50}, timeout=300)
    practice_ids = [p["id"] for p in practices.json()["items"]]
    organisation_ids = [o["id"] for o in organisations.json()["items"]]
    search = [f"/api/v1/practices/search?q={q.replace(' ', '+')}" for q in QUERIES]
    reads = 1.0 - writes
    return [
        Endpoint("node search", 0.35 * reads, 200, targets=search),
        Endpoint(
            "node practice",
            0.15 * reads,
            200,
            targets=[f"/api/v1/practices/{i}" for i in practice_ids],
        ),
        Endpoint(
            "node organisation list",
            0.10 * reads,
            200,
            targets=["/api/v1/organisations?limit=50", "/api/v1/organisations?country=FR&limit=50"],
        ),
        Endpoint(
            "node organisation",
            0.10 * reads,
            200,
            targets=[f"/api/v1/organisations/{i}" for i in organisation_ids],
        ),
        Endpoint(
            "hub EU search",
            0.30 * reads,
            200,
            targets=[f"/api/v1/eu/search?q={q.replace(' ', '+')}" for q in QUERIES],
        ),
        Endpoint(
            "node write (new draft practice)",
            writes,
            201,
            method="POST",
            targets=["/api/v1/practices"],
            body=_practice(),
        ),
    ]


def _practice() -> dict[str, Any]:
    return {
        "kind": "practice",
        "title": "Load bench mentoring after release",
        "language": "en",
        "summary": "Mentors accompany released prisoners through their first year outside.",
        "description": "A social worker and a mentor meet the person weekly.",
        "intervention_types": ["mentoring"],
        "process_focus": ["rehabilitation_reintegration"],
        "settings": ["post_release"],
        "target_groups": ["released_prisoners"],
        "country": "FR",
        "licence": "CC-BY-4.0",
    }


def add_editor(env: dict[str, str]) -> None:
    """An administrator on the node (writes need one), through the console."""
    command = ["user", "add", "np-admin@example.org", "--role", "admin", "--password-stdin"]
    done = subprocess.run(
        [sys.executable, "-m", "node", *command],
        env=env,
        input=PASSWORD + "\n",
        text=True,
        capture_output=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"integra user add failed: {done.stdout}{done.stderr}")


def run(args: argparse.Namespace) -> None:
    http = _bench_http()
    backend = "sqlite" if args.sqlite else "postgresql"
    if backend == "postgresql" and not http.pg_available():
        raise SystemExit(f"PostgreSQL is not reachable at {http.PG_ADMIN_URL}")
    print(
        f"## {backend}: {args.practices:,} practices, {args.organisations:,} organisations, "
        f"EU pool of {args.pool:,}; {args.clients} clients x {args.seconds} s, "
        f"{args.workers} worker(s) each for the node and the hub, {args.writes:.0%} writes"
    )
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        work = Path(tmp)
        data = http.seeded(backend, args, work)
        try:
            analyse(http, data.cleanup)
            node_env = http.node_env(data.node_url, work / "node", hub=False, workers=args.workers)
            hub_env = http.node_env(data.hub_url, work / "hub", hub=True, workers=args.workers)
            for env in (node_env, hub_env):
                env["INTEGRA_ACCESS_LOG"] = "false"  # the figures, not a log line per request
                env["INTEGRA_SIGN_IN_ADDRESS_ATTEMPTS"] = "1000"
            subprocess.run(
                [sys.executable, "-m", "node", "db", "upgrade"],
                env=node_env,
                check=True,
                capture_output=True,
            )
            add_editor(node_env)
            serve = [sys.executable, "-m", "node", "serve"]
            with (
                http.server(serve, node_env, "/healthz") as node,
                http.server(serve, hub_env, "/healthz") as hub,
            ):
                signed = httpx.post(
                    f"{node}/api/v1/auth/token",
                    json={"email": "np-admin@example.org", "password": PASSWORD},
                    timeout=60,
                )
                signed.raise_for_status()
                token = signed.json()["token"]
                mix = endpoints(node, hub, args.writes)
                bases = {"node": node, "hub": hub}
                warm = asyncio.run(drive(bases, mix, token, args.warm_up, args.clients))
                del warm
                http.settle(node, hub)
                tallies = asyncio.run(drive(bases, mix, token, args.seconds, args.clients))
                report(tallies, mix, args.seconds)
        finally:
            for name in data.cleanup:
                http._pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def analyse(http: ModuleType, databases: list[str]) -> None:
    """Planner statistics for the seeded copies, as autovacuum would have gathered them on a
    running node (bulk-seeded tables have none: the planner then guesses, and may read every
    practice where an index of a handful would do)."""
    import psycopg

    for name in databases:
        with psycopg.connect(http._pg_url(name), autocommit=True) as conn:
            conn.execute("ANALYZE")


async def drive(
    bases: dict[str, str], mix: list[Endpoint], token: str, seconds: float, clients: int
) -> dict[str, Tally]:
    tallies: dict[str, Tally] = defaultdict(Tally)
    until = time.monotonic() + seconds
    await asyncio.gather(
        *(client(bases, mix, token, until, tallies, seed) for seed in range(clients))
    )
    return tallies


def report(tallies: dict[str, Tally], mix: list[Endpoint], seconds: float) -> None:
    print("\n| endpoint | requests/s | p50 | p95 | p99 | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    every: list[float] = []
    errors = 0
    for endpoint in mix:
        tally = tallies[endpoint.name]
        every += tally.latencies
        errors += tally.errors
        print(
            f"| {endpoint.name} | {len(tally.latencies) / seconds:,.1f} | "
            f"{percentile(tally.latencies, 0.50):.0f} ms | "
            f"{percentile(tally.latencies, 0.95):.0f} ms | "
            f"{percentile(tally.latencies, 0.99):.0f} ms | {tally.errors} |"
        )
    print(
        f"| all | {len(every) / seconds:,.1f} | {percentile(every, 0.50):.0f} ms | "
        f"{percentile(every, 0.95):.0f} ms | {percentile(every, 0.99):.0f} ms | {errors} |"
    )
    for endpoint in mix:
        if tallies[endpoint.name].sample_error:
            print(f"{endpoint.name}: first error {tallies[endpoint.name].sample_error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--practices", type=int, default=100_000)
    parser.add_argument("--organisations", type=int, default=5_000)
    parser.add_argument("--pool", type=int, default=20_000, help="records in the hub's EU pool")
    parser.add_argument("--writes", type=float, default=0.05, help="share of requests writing")
    parser.add_argument("--warm-up", type=int, default=10, help="seconds of load not counted")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument(
        "--cache-dir",
        default=os.environ.get(
            "INTEGRA_BENCH_CACHE", str(Path(tempfile.gettempdir()) / "integra-bench-http")
        ),
        help="where seeded SQLite databases are kept",
    )
    run(parser.parse_args())


if __name__ == "__main__":
    main()
