"""HTTP benchmark: `integra serve` under load, beside a bare FastAPI app, measured with wrk.

    python bench/http.py [--practices 100000] [--organisations 5000] [--pool 20000]
                         [--seconds 10] [--connections 32] [--workers 1,2] [--postgres]

Seeds a node database with N published practices (the synthetic multilingual set of
`bench/search.py`, indexed through the same path as `integra search reindex`) and a registry of
M organisations, and a hub database with an EU pool of P federated records (indexed through the
pool's catch-up); the seeded databases are cached (SQLite files under the cache directory,
PostgreSQL template databases), keyed by sizes, so a rerun starts in seconds. Starts
`integra serve` (`python -m node serve`) on a copy of each, once per worker count, and a bare
FastAPI app answering `{"ok": true}`, and drives each endpoint with wrk (Debian's package,
installed when absent) at C connections for S seconds. Prints requests/s, p50 and p99 per
endpoint and each one's ratio to the bare app's requests/s measured just before it (the bare
app keeps running beside the node: other work on a shared machine comes and goes). Nothing
here is a pass/fail test: it prints figures.

A URL asked again and again is answered from the node's kept answers (`node.core.answers`)
while the practices and the registry are unchanged: what a popular search or the registry's
first page costs. The "varied" rows ask several hundred distinct searches or lists in turn,
more than a node keeps, so each is built anew: what a crowd of different readers costs.
"""

# ruff: noqa: E402 - the standard library and the project import after the sys.path fix.
import sys
from pathlib import Path

# This file is named http.py: its folder, first on sys.path when it runs as a script, must not
# shadow the standard library's `http` package that httpx and uvicorn import.
BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(BENCH.parent))

import argparse
import contextlib
import importlib.util
import itertools
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import insert
from sqlalchemy.orm import Session

from node import migrations
from node.core.db import create_sync_engine

ROOT = BENCH.parent

PG_ADMIN_URL = os.environ.get(
    "INTEGRA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def generate(n: int, seed: int = 7) -> Any:
    """The synthetic practices of bench/search.py."""
    spec = importlib.util.spec_from_file_location("bench_search", BENCH / "search.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate(n, seed)


BARE_APP = """
from fastapi import FastAPI
app = FastAPI()

@app.get("/")
async def root() -> dict[str, bool]:
    return {"ok": True}
"""
# The bare app in N processes, each with a socket of its own on the port (SO_REUSEPORT), as
# `integra serve --workers N` runs (`node.cli.workers`): the kernel hands connections out in
# turn. With one process, what `uvicorn bare_app:app` does.
BARE_RUNNER = """
import os, socket, sys
import uvicorn

port = int(sys.argv[sys.argv.index("--port") + 1])
workers = int(sys.argv[sys.argv.index("--workers") + 1])


def serve() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if workers > 1:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    uvicorn.Server(uvicorn.Config("bare_app:app", log_level="warning")).run(sockets=[sock])


for _ in range(workers - 1):
    if os.fork() == 0:
        serve()
        os._exit(0)
serve()
"""


# --- seeding ------------------------------------------------------------------------------


def seed_node(url: str, practices: int, organisations: int) -> None:
    """Practices (published, indexed) and organisations, by direct Core inserts."""
    from node.core.outbox import JobContext
    from practices.models import Practice, PracticeTerm
    from practices.search.sql import SqlSearch
    from practices.tasks import reindex_all
    from registry.models import Organisation, OrganisationTerm
    from registry.vocabulary import Area, Level, OrganisationKind, Sector, TargetGroup

    migrations.upgrade(url)
    engine = create_sync_engine(url)
    rows, terms, vocab = generate(practices)
    rng = random.Random(5)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    orgs, org_terms = [], []
    countries = ["FR", "PT", "BG", "GR", "DE", "NL", "SE", "AT", "IT", "BE", "DK"]
    for i in range(organisations):
        oid = uuid.uuid4()
        words = vocab["en"]
        name = " ".join(rng.choices(words, k=rng.randint(2, 5))).title()
        description = " ".join(rng.choices(words, k=40))
        orgs.append(
            {
                "id": oid,
                "ref": f"bench-{i}",
                "name": name,
                "local_names": [],
                "kind": rng.choice(list(OrganisationKind)).value,
                "sector": rng.choice(list(Sector)).value,
                "level": rng.choice(list(Level)).value,
                "country": rng.choice(countries),
                "region": None,
                "description": description,
                "services": rng.choices(words, k=3),
                "languages": ["en"],
                "website": f"https://example.org/{i}",
                "status": "active",
                "is_sample": False,
                "search_text": f"{name} {description}".lower(),
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        for facet, vocab_enum in (("area", Area), ("target_group", TargetGroup)):
            for value in set(rng.choices([v.value for v in vocab_enum], k=2)):
                org_terms.append({"organisation_id": oid, "facet": facet, "term": value})
    with Session(engine) as session:
        for table, batch, size in (
            (Practice, rows, 5000),
            (PracticeTerm, terms, 20000),
            (Organisation, orgs, 5000),
            (OrganisationTerm, org_terms, 20000),
        ):
            for start in range(0, len(batch), size):
                session.execute(insert(table), batch[start : start + size])
        session.commit()
    with Session(engine) as session:
        reindex_all(session, JobContext(search=SqlSearch()))
        session.commit()
    engine.dispose()


def seed_hub(url: str, pool: int) -> None:
    """An EU pool of federated records (envelopes stored as received), indexed."""
    import json

    from federation.models import FederatedRecord
    from federation.pool import catch_up_index, search_id
    from practices.search.sql import SqlSearch

    migrations.upgrade(url)
    engine = create_sync_engine(url)
    practices, terms, _ = generate(pool, seed=13)
    facets: dict[Any, dict[str, list[str]]] = {}
    for term in terms:
        facets.setdefault(term["practice_id"], {}).setdefault(term["facet"], []).append(
            term["value"]
        )
    records = []
    for n, p in enumerate(practices):
        origin = p["country"]
        record_id = f"{origin}:{p['id']}"
        body = {
            "kind": p["kind"],
            "title": p["title"],
            "language": p["language"],
            "summary": p["summary"],
            "description": p["description"],
            "country": origin,
            "start_date": p["start_date"].isoformat(),
            "licence": p["licence"],
            "evaluation": {"type": p["evaluation_type"]},
            **{BODY_FACETS[f]: v for f, v in facets.get(p["id"], {}).items()},
        }
        envelope = json.dumps({"payload": {"id": record_id, "body": body}})
        records.append(
            {
                "record_id": record_id,
                "origin": origin,
                "record_type": "practice",
                "version": 1,
                "withdrawn": False,
                "body_hash": "0" * 64,
                "envelope": envelope,
                "origin_seq": n + 1,
                "received_at": p["published_at"],
                "search_id": search_id(record_id),
                "indexed": False,
            }
        )
    with Session(engine) as session:
        for start in range(0, len(records), 5000):
            session.execute(insert(FederatedRecord), records[start : start + 5000])
        session.commit()
    catch_up_index(lambda: Session(engine), SqlSearch())
    engine.dispose()


BODY_FACETS = {
    "intervention_type": "intervention_types",
    "setting": "settings",
    "target_group": "target_groups",
    "process_focus": "process_focus",
}


@dataclass
class Seeded:
    node_url: str
    hub_url: str
    cleanup: list[str]


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def _pg_url(name: str) -> str:
    return f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"


def _pg_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            is not None
        )


def pg_available() -> bool:
    try:
        _pg_exists("postgres")
        return True
    except Exception:
        return False


def seeded(backend: str, args: argparse.Namespace, work: Path) -> Seeded:
    """Copies of the cached seeded databases (seeding them first when not cached)."""
    # Keyed by sizes (and the seeding's own version): `integra serve` migrates a copy to the head.
    key = f"p{args.practices}-o{args.organisations}-h{args.pool}-v1"
    if backend == "sqlite":
        cache = Path(args.cache_dir)
        cache.mkdir(parents=True, exist_ok=True)
        urls = []
        for role, seed in (("node", seed_node_args(args)), ("hub", seed_hub_args(args))):
            cached = cache / f"{role}-{key}.db"
            if not cached.exists():
                partial = cached.with_suffix(".partial")
                partial.unlink(missing_ok=True)
                began = time.perf_counter()
                seed[0](f"sqlite:///{partial}", *seed[1])
                _checkpoint(partial)
                partial.rename(cached)
                for lock in cache.glob(f"{partial.name}.*.lock"):
                    lock.unlink()
                print(f"seeded {cached.name} in {time.perf_counter() - began:.0f} s")
            copy = work / f"{role}.db"
            shutil.copy(cached, copy)
            urls.append(f"sqlite:///{copy}")
        return Seeded(urls[0], urls[1], [])
    names = []
    for role, seed in (("node", seed_node_args(args)), ("hub", seed_hub_args(args))):
        template = f"bench_http_{role}_{key}".replace("-", "_").lower()
        if not _pg_exists(template):
            _pg_admin(f'DROP DATABASE IF EXISTS "{template}_partial"')
            _pg_admin(f'CREATE DATABASE "{template}_partial"')
            began = time.perf_counter()
            seed[0](_pg_url(f"{template}_partial"), *seed[1])
            _pg_admin(f'ALTER DATABASE "{template}_partial" RENAME TO "{template}"')
            print(f"seeded {template} in {time.perf_counter() - began:.0f} s")
        copy = f"bench_http_run_{role}_{uuid.uuid4().hex[:8]}"
        _pg_admin(f'CREATE DATABASE "{copy}" TEMPLATE "{template}"')
        names.append(copy)
    return Seeded(_pg_url(names[0]), _pg_url(names[1]), names)


def seed_node_args(args: argparse.Namespace) -> tuple[Any, tuple[Any, ...]]:
    return seed_node, (args.practices, args.organisations)


def seed_hub_args(args: argparse.Namespace) -> tuple[Any, tuple[Any, ...]]:
    return seed_hub, (args.pool,)


def _checkpoint(path: Path) -> None:
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Each running server's process (a session leader: its workers share its session id).
LEADERS: dict[str, int] = {}
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# Each running server's PostgreSQL database, when it has one.
DATABASES: dict[str, str] = {}


def cpu_seconds(url: str) -> float | None:
    """CPU time (user + system) of a server's processes so far: the one started and every
    worker in its session (Linux's /proc; None elsewhere). CPU time per request moves far less
    than requests per second when other work shares the machine."""
    leader = LEADERS.get(url)
    if leader is None or not Path("/proc/self/stat").exists():
        return None
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[3]) == leader:  # the session id (field 6 of stat)
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / TICK


def database_cpu_seconds(url: str) -> float | None:
    """CPU time so far of the PostgreSQL backends connected to the server's database (their
    title names it), None for SQLite, whose work is done in the server's own processes."""
    database = DATABASES.get(url)
    if database is None:
        return None
    ticks = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes()
            if b"postgres" not in title or f" {database} ".encode() not in title:
                continue
            fields = (cmdline.parent / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / TICK


@contextlib.contextmanager
def server(command: list[str], env: dict[str, str], ready_path: str) -> Iterator[str]:
    """A server started with ``command``, until it is ready; its URL. Its database's name is
    noted when it is PostgreSQL, to count the CPU of the backends that serve it."""
    port = free_port()
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(url + ready_path, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise SystemExit(f"{command} did not start:\n{log.read().decode()[-3000:]}")
            time.sleep(0.3)
        LEADERS[url] = process.pid
        if (database := env.get("DATABASE_URL", "")).startswith("postgresql"):
            DATABASES[url] = database.rpartition("/")[2]
        yield url
    finally:
        LEADERS.pop(url, None)
        DATABASES.pop(url, None)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def node_env(database_url: str, data_dir: Path, *, hub: bool, workers: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTEGRA_")}
    env.pop("DATABASE_URL", None)
    env |= {
        "DATABASE_URL": database_url,
        "INTEGRA_DATA_DIR": str(data_dir),
        "INTEGRA_WORKERS": str(workers),
    }
    if hub:
        env |= {"INTEGRA_ROLE": "hub", "INTEGRA_COUNTRY": "EU"}
    return env


# --- load ---------------------------------------------------------------------------------


@dataclass
class Figure:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    cpu_ms: float | None = None  # the server's CPU milliseconds per request
    load_ms: float | None = None  # wrk's own
    database_ms: float | None = None  # PostgreSQL's backends', for the server's database


def measured(server_url: str, url: str, seconds: int, connections: int) -> Figure:
    """wrk's figures for ``url``, with the CPU the server at ``server_url`` (and its PostgreSQL
    backends) spent per request."""
    before = cpu_seconds(server_url), database_cpu_seconds(server_url)
    figure = wrk(url, seconds, connections)
    after = cpu_seconds(server_url), database_cpu_seconds(server_url)
    if figure.requests:
        if before[0] is not None and after[0] is not None:
            figure.cpu_ms = (after[0] - before[0]) * 1000 / figure.requests
        if before[1] is not None and after[1] is not None:
            figure.database_ms = (after[1] - before[1]) * 1000 / figure.requests
    return figure


def all_cpu_ms(figure: Figure) -> float | None:
    """CPU milliseconds a request cost on the machine: the server's, its database's and the
    load generator's."""
    if figure.cpu_ms is None or figure.load_ms is None:
        return None
    return figure.cpu_ms + (figure.database_ms or 0) + figure.load_ms


def _ms_or_dash(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _cpu(figure: Figure) -> str:
    return f"{figure.cpu_ms:.2f}" if figure.cpu_ms is not None else "?"


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit]


def warm(url: str, connections: int, seconds: int) -> None:
    """Ask ``url`` until every worker answers it as it will in the run: a second of load
    whose slowest answers take under half a second (a worker's first search may take
    seconds), at most ten times. A "varied" rotation is asked for as long as the run: each
    worker then meets its words and filters once before, as a server that has run a while
    has (its answers are still built anew: there are more of them than a worker keeps)."""
    if url.startswith(VARIED):
        wrk(url, seconds, connections)
        return
    for _ in range(10):
        if wrk(url, 1, connections).p99_ms < 500:
            return


def wrk(url: str, seconds: int, connections: int) -> Figure:
    """wrk on one URL, or on a rotation of URLs (`url` is then `VARIED` + a Lua script's path:
    each connection asks the next path of the script's list in turn)."""
    threads = wrk_threads(connections)
    target, script = url, []
    if url.startswith(VARIED):
        script_path, _, target = url.removeprefix(VARIED).partition("|")
        script = ["-s", script_path]
    began = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(
        [
            "wrk",
            "--latency",
            "--timeout",
            "30s",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            *script,
            target,
        ],
        capture_output=True,
        text=True,
    )
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk's, waited for by run()
    load_seconds = ended.ru_utime + ended.ru_stime - began.ru_utime - began.ru_stime
    if output.returncode != 0:
        raise SystemExit(f"wrk failed on {url}:\n{output.stdout}{output.stderr}")
    output = output.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        errors += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        errors += sum(int(g) for g in match.groups())
    load_ms = load_seconds * 1000 / requests if requests else None
    return Figure(rps, p50, p99, errors, requests, load_ms=load_ms)


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    print("wrk is not installed: apt-get install -y wrk")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "wrk"], check=True)


# A URL measured as a rotation of many (see `wrk`): "varied:<lua script>|<base URL>".
VARIED = "varied:"
# Each of wrk's threads runs the script in a Lua state of its own: each asks its own share of
# the list in turn, so that no two threads ask the same path (two threads in step asked each
# path twice in a row, and with one worker the second answer was a kept one: half the
# "varied" requests were; threads starting at different places could still drift into step).
ROTATION = """
paths = {%s}
share = %d
first = 0
counter = 0
threads = 0
function setup(thread)
  thread:set("first", threads * share)
  threads = threads + 1
end
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[first + (counter %% share) + 1])
end
"""


def wrk_threads(connections: int) -> int:
    """One thread drives all the connections (at 5-16 µs of CPU an answer here, it keeps up
    with over 60,000 answers a second). On a
    machine whose cores the server shares, a second thread only took the server's CPU: a kept
    search with two workers cost the server 90-93.5 µs of CPU an answer against 97-98 µs with
    two threads, and two workers over one gained 1.52-1.62 times against 1.46-1.49."""
    return 1


def rotation(work: Path, name: str, base: str, paths: list[str], connections: int) -> str:
    """A varied URL: each request asks the next of `paths` (more than the server keeps answers
    for, so that each is built anew: what a crowd of different readers costs)."""
    script = work / f"{name}.lua"
    listed = ", ".join(f'"{p}"' for p in paths)
    script.write_text(ROTATION % (listed, len(paths) // wrk_threads(connections)))
    return f"{VARIED}{script}|{base}"


def varied_searches(node: str, count: int = 600) -> list[str]:
    """`count` distinct searches: words and pairs of words of the titles the node holds."""
    words: list[str] = []
    cursor: str | None = None
    for _ in range(3):
        params: dict[str, str | int] = {"q": "", "limit": 100, "sort": "date"}
        found = httpx.get(
            f"{node}/api/v1/practices/search",
            params=params | ({"cursor": cursor} if cursor else {}),
            timeout=300,
        ).json()
        words += [w for item in found["items"] for w in item["title"].lower().split()]
        cursor = found.get("next_cursor")
        if not cursor:
            break
    distinct = list(dict.fromkeys(w for w in words if w.isalpha() and len(w) > 3))
    queries = distinct + [f"{a} {b}" for a, b in itertools.pairwise(distinct)]
    return [f"/api/v1/practices/search?q={quote(q)}" for q in queries][:count]


def varied_lists(count: int = 600) -> list[str]:
    """`count` distinct organisation lists: a country and a kind, at several page sizes."""
    from registry.vocabulary import OrganisationKind

    countries = ["FR", "PT", "BG", "GR", "DE", "NL", "SE", "AT", "IT", "BE", "DK"]
    lists = [
        f"/api/v1/organisations?country={c}&kind={k.value}&limit={n}"
        for n in (50, 40, 30, 20)
        for c in countries
        for k in OrganisationKind
    ]
    return lists[:count]


def endpoints(node: str, hub: str, work: Path, connections: int) -> list[tuple[str, str]]:
    """The endpoints measured, with their URLs (ids looked up from the running servers)."""
    practice = httpx.get(f"{node}/api/v1/practices/search", params={"limit": 1}, timeout=300).json()
    organisations = httpx.get(
        f"{node}/api/v1/organisations", params={"limit": 1}, timeout=300
    ).json()
    searches = varied_searches(node)
    lists = varied_lists()
    return [
        ("health", f"{node}/healthz"),
        (
            "search, selective (q=prison mentoring)",
            f"{node}/api/v1/practices/search?q=prison+mentoring",
        ),
        ("search, broad (q=re, a prefix)", f"{node}/api/v1/practices/search?q=re"),
        ("search, empty query", f"{node}/api/v1/practices/search?q="),
        ("a practice", f"{node}/api/v1/practices/{practice['items'][0]['id']}"),
        (
            f"search, varied ({len(searches)} distinct queries in turn)",
            rotation(work, "searches", node, searches, connections),
        ),
        ("organisation list (limit=50)", f"{node}/api/v1/organisations?limit=50"),
        (
            f"organisation list, varied ({len(lists)} distinct filters and sizes in turn)",
            rotation(work, "lists", node, lists, connections),
        ),
        ("an organisation", f"{node}/api/v1/organisations/{organisations['items'][0]['id']}"),
        ("hub EU search (q=prison)", f"{hub}/api/v1/eu/search?q=prison"),
    ]


def settle(*servers: str, deadline: float = 120) -> None:
    """Wait until the servers have worked off what the last load left queued (requests wrk
    sent and gave up on are still answered): until each answers its health check quickly."""
    end = time.monotonic() + deadline
    for url in servers:
        quick = 0
        while quick < 2 and time.monotonic() < end:
            began = time.perf_counter()
            httpx.get(f"{url}/healthz", timeout=deadline)
            quick = quick + 1 if time.perf_counter() - began < 0.25 else 0
            time.sleep(0.1)


def totals(targets: list[tuple[str, str]]) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for name, url in targets:
        if url.startswith(VARIED):
            continue
        answer = httpx.get(url, timeout=300)
        if answer.status_code != 200:
            print(f"{name}: {answer.status_code} {answer.text[:200]}")
            continue
        out[name] = answer.json().get("total") if "search" in name else None
    return out


def run(backend: str, args: argparse.Namespace) -> None:
    print(
        f"\n## {backend}: {args.practices:,} practices, {args.organisations:,} organisations, "
        f"EU pool of {args.pool:,}; wrk {args.connections} connections x {args.seconds} s"
    )
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        work = Path(tmp)
        data = seeded(backend, args, work)
        try:
            (work / "bare_app.py").write_text(BARE_APP)
            (work / "bare_runner.py").write_text(BARE_RUNNER)
            env = dict(os.environ) | {"PYTHONPATH": str(work)}
            tables: dict[int, dict[str, tuple[Figure, Figure]]] = {}
            for workers in args.workers:
                bare_cmd = [sys.executable, str(work / "bare_runner.py"), "--workers", str(workers)]
                with server(bare_cmd, env, "/") as bare:
                    wrk(bare + "/", 2, args.connections)  # warm-up
                    baseline = measured(bare, bare + "/", args.seconds, args.connections)
                    print(
                        f"\nbare FastAPI app, {workers} worker(s): {baseline.rps:,.0f} "
                        f"requests/s, p50 {baseline.p50_ms:.1f} ms, p99 {baseline.p99_ms:.1f} ms, "
                        f"{_cpu(baseline)} ms of CPU per request"
                    )
                    tables[workers] = measure_node(backend, args, data, work, workers, bare)
            print_scaling(backend, tables)
        finally:
            for name in data.cleanup:
                _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure_node(
    backend: str, args: argparse.Namespace, data: Seeded, work: Path, workers: int, bare: str
) -> dict[str, tuple[Figure, Figure]]:
    """Each endpoint of a node (and a hub) serving with ``workers`` processes, beside the bare
    app in as many. The bare app is measured again just before each endpoint, for a third of
    the time: other work on the machine comes and goes, and the ratio is taken to the bare
    figure of the same minute. Returns each endpoint's figure and the bare app's beside it."""
    figures: dict[str, tuple[Figure, Figure]] = {}
    serve = [sys.executable, "-m", "node", "serve"]
    with (
        server(
            serve, node_env(data.node_url, work / "node", hub=False, workers=workers), "/healthz"
        ) as node,
        server(
            serve, node_env(data.hub_url, work / "hub", hub=True, workers=workers), "/healthz"
        ) as hub,
    ):
        targets = endpoints(node, hub, work, args.connections)
        found = totals(targets)
        print(f"\n{backend}, {workers} worker(s)\n")
        print(
            "| endpoint | requests/s | p50 | p99 | bare app's requests/s | ratio to bare | errors "
            "| server CPU ms/request | bare app's | CPU ratio | database's | wrk's |"
        )
        print("| --- |" + " ---: |" * 11)
        for name, url in targets:
            settle(node, hub)
            warm(url, args.connections, args.seconds)
            beside = measured(bare, bare + "/", max(2, args.seconds // 3), args.connections)
            figure = measured(
                hub if url.startswith(hub + "/") else node, url, args.seconds, args.connections
            )
            total = found.get(name)
            label = name + (f" [{total:,} hits]" if total is not None else "")
            figures[label] = (figure, beside)
            print(
                f"| {label} | {figure.rps:,.0f} | {figure.p50_ms:.0f} ms | "
                f"{figure.p99_ms:.0f} ms | {beside.rps:,.0f} | {figure.rps / beside.rps:.3f} | "
                f"{figure.errors} | {_cpu(figure)} | {_cpu(beside)} | "
                f"{cpu_ratio(beside, figure)} | {_ms_or_dash(figure.database_ms)} | "
                f"{_ms_or_dash(figure.load_ms)} |",
                flush=True,
            )
    return figures


def print_scaling(backend: str, tables: dict[int, dict[str, tuple[Figure, Figure]]]) -> None:
    """Each endpoint's requests/s with N workers over its requests/s with one, beside the bare
    app's own (N processes over one), and beside what the cores allow: the cores, wholly busy
    at what a request cost with N workers (the server's CPU, its database's and wrk's), over
    the one-worker figure. On a machine whose cores also run the load generator, a request that
    costs the server little more than it costs wrk cannot gain the full N times."""
    counts = sorted(tables)
    if len(counts) < 2 or counts[0] != 1:
        return
    one = tables[1]
    cores = os.cpu_count() or 1
    print(
        f"\n{backend}: requests/s with N workers over 1 worker (the bare app's in brackets), "
        f"and what {cores} cores allow at the CPU a request cost with N workers\n"
    )
    print("| endpoint | " + " | ".join(f"{n} workers | allowed" for n in counts[1:]) + " |")
    print("| --- |" + " ---: | ---: |" * (len(counts) - 1))
    for label, (figure, beside) in one.items():
        cells = []
        for n in counts[1:]:
            other = tables[n].get(label)
            if other is None or not figure.rps or not beside.rps:
                cells += ["?", "?"]
                continue
            cells.append(f"{other[0].rps / figure.rps:.2f} ({other[1].rps / beside.rps:.2f})")
            cost = all_cpu_ms(other[0])
            cells.append(f"{cores * 1000 / cost / figure.rps:.2f}" if cost else "?")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


def cpu_ratio(bare: Figure, figure: Figure) -> str:
    """The bare app's CPU per request over the endpoint's: the ratio of requests/s the two
    would reach with the same processor time, whatever else the machine runs meanwhile."""
    if bare.cpu_ms is None or not figure.cpu_ms:
        return "?"
    return f"{bare.cpu_ms / figure.cpu_ms:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--practices", type=int, default=100_000)
    parser.add_argument("--organisations", type=int, default=5_000)
    parser.add_argument("--pool", type=int, default=20_000, help="records in the hub's EU pool")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--workers",
        type=lambda v: [int(w) for w in v.split(",")],
        default=[1, os.cpu_count() or 1],
        help="worker counts to measure, comma-separated (default: 1 and one per core)",
    )
    parser.add_argument("--postgres", action="store_true", help="also measure on PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--cache-dir",
        default=str(Path(tempfile.gettempdir()) / "integra-bench-http"),
        help="where the seeded SQLite databases are kept between runs",
    )
    args = parser.parse_args()
    args.workers = list(dict.fromkeys(args.workers))
    ensure_wrk()
    if not args.no_sqlite:
        run("sqlite", args)
    if args.postgres:
        if pg_available():
            run("postgresql", args)
        else:
            print(f"\nPostgreSQL does not answer at {PG_ADMIN_URL}: skipped")


if __name__ == "__main__":
    main()
