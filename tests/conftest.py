"""Fixtures: the suite runs on SQLite always and on PostgreSQL when it answers.

PostgreSQL is required (absent = failure, not skip) when CI=true or INTEGRA_REQUIRE_SERVICES=1.
Migrations run once per database per pytest process (`_templates`); each test runs inside a
transaction that is rolled back, with each request's session joined to it through a savepoint.
"""

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from alembic import command
from argon2 import PasswordHasher
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from node import migrations
from node.app import create_app
from node.core import auth
from node.core.db import create_engine
from node.core.settings import Settings, async_url, sync_url

PG_ADMIN_URL = os.environ.get(
    "INTEGRA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# The servers the tests start run one API process each (the default is one per core): the
# suite runs them side by side on a few cores. tests/node/test_serve.py starts several.
os.environ.setdefault("INTEGRA_WORKERS", "1")
# Nor do they write an access log line per request: most tests read a server's output only when
# it fails, and a pipe nobody drains blocks a server after some 300 lines (schemathesis sends
# thousands). tests/node/test_metrics.py starts a server with the default and reads its log.
os.environ.setdefault("INTEGRA_ACCESS_LOG", "false")
# What a helper that starts a server keeps of the test process's own INTEGRA_ settings (it
# drops the others, as an operator's clean shell would): these two above. Without the first a
# server ran a supervisor and a worker per core, three imports of the app instead of one.
KEPT_SETTINGS = ("INTEGRA_ACCESS_LOG", "INTEGRA_WORKERS")

# The suite stores and checks passwords some thousands of times, in this process: argon2id at
# its lowest cost here (a hash names its own parameters, so the servers the tests start check
# these as cheaply). Production keeps the library's cost; tests/node/test_hardening.py, which
# is about that cost, restores it (`production_password_cost`).
auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

REQUIRE_SERVICES = (
    os.environ.get("CI", "").lower() == "true" or os.environ.get("INTEGRA_REQUIRE_SERVICES") == "1"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and _is_coroutine(item.obj):
            item.add_marker(pytest.mark.anyio)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Whole files, longest first, a file's two databases apart (tests/scheduling.py)."""
    if config.getoption("dist") != "loadfile":
        return None
    from tests.scheduling import LongestFirst

    return LongestFirst(config, log)  # type: ignore[arg-type]


def _is_coroutine(obj: object) -> bool:
    import inspect

    return inspect.iscoroutinefunction(obj)


@pytest.fixture
def production_password_cost() -> Iterator[None]:
    """Passwords hashed and checked at the cost production uses, for a test about that cost."""
    cheap, auth._hasher = auth._hasher, PasswordHasher()
    auth._dummy_hash.cache_clear()
    try:
        yield
    finally:
        auth._hasher = cheap
        auth._dummy_hash.cache_clear()


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def pytest_report_header() -> list[str]:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            found = f"PostgreSQL {conn.execute('SHOW server_version').fetchone()[0]}"  # type: ignore[index]
    except psycopg.Error:
        found = "PostgreSQL unreachable"
    return [f"{found} at {PG_ADMIN_URL}; required: {REQUIRE_SERVICES}"]


def _pg_available() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    except psycopg.Error as exc:
        return (
            None
            if not REQUIRE_SERVICES
            else pytest.fail(
                f"PostgreSQL is required here (CI) but unreachable at {PG_ADMIN_URL}: {exc}"
            )
        )


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


def _pg_admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


class Database:
    """A migrated template database and a way to make fresh copies of it."""

    def __init__(self, backend: str, url: str, tmp: Path) -> None:
        self.backend = backend
        self.url = url
        self.tmp = tmp
        self.copies: list[str] = []

    def fresh_copy(self) -> str:
        """A new database with the schema and no rows, for tests that run the CLI or a server."""
        return self.copy_of(self.url)

    def copy_of(self, url: str) -> str:
        """A new database with the rows of the one at `url` (of this backend, which nothing
        holds open): what a module builds once with the commands, copied for each test that
        starts from it."""
        name = f"copy_{uuid.uuid4().hex[:10]}"
        if self.backend == "sqlite":
            source, target = Path(url.removeprefix("sqlite:///")), self.tmp / f"{name}.db"
            shutil.copy(source, target)
            wal = source.with_name(source.name + "-wal")  # what a writer left unmerged
            if wal.exists():
                shutil.copy(wal, target.with_name(target.name + "-wal"))
            return f"sqlite:///{target}"
        _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{url.rpartition("/")[2]}"')
        self.copies.append(name)
        return _pg_url(name)

    @property
    def template_name(self) -> str:
        return self.url.rpartition("/")[2]


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Database]]:
    """Each backend's migrated template, made once per pytest process and dropped at its end.

    `database` is parametrised at session scope, so pytest tears it down whenever the next
    test wants the other backend: under xdist every file flips from sqlite to postgresql and
    back, which ran the migrations twice per file per worker (~2 s each) when the template
    was made in `database` itself."""
    made: dict[str, Database] = {}
    yield made
    if "postgresql" in made:
        db = made["postgresql"]
        _drop_databases([*db.copies, db.template_name])


def _drop_databases(names: list[str]) -> None:
    """Drop the databases side by side: PostgreSQL makes each DROP DATABASE wait for a
    checkpoint (1-3 s on a busy machine), and drops waiting together share one. One after the
    other, a worker's fifty copies kept it a minute or two after its last test."""

    def drop(name: str) -> None:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(drop, names))


def _template(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Database:
    tmp = tmp_path_factory.mktemp(backend)
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'template.db'}"
        migrations.upgrade(url)
        return Database("sqlite", url, tmp)
    name = f"integra_test_{uuid.uuid4().hex[:8]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    db = Database("postgresql", _pg_url(name), tmp)
    migrations.upgrade(db.url)
    return db


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    _templates: dict[str, Database],
) -> Database:
    if request.param == "postgresql" and _pg_available() is None:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} (set CI=true to require it)")
    if request.param not in _templates:
        _templates[request.param] = _template(request.param, tmp_path_factory)
    return _templates[request.param]


@pytest.fixture
async def connection(database: Database) -> AsyncIterator[AsyncConnection]:
    engine = create_engine(async_url(database.url), pooled=False)
    async with engine.connect() as conn:
        transaction = await conn.begin()
        yield conn
        await transaction.rollback()
    await engine.dispose()


@pytest.fixture
def sessions(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Sessions that join the test's transaction; their commits are savepoints."""
    return async_sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as s:
        yield s


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    return Settings(database_url=database.url, data_dir=tmp_path)


@pytest.fixture
async def client(
    settings: Settings, connection: AsyncConnection, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, engine=connection.engine)
    app.state.session_factory = sessions
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://node.test") as c:
        yield c


def migrate(db: str, revision: str, *, down: bool = False) -> None:
    """Migrate the database at ``db`` up (or down) to ``revision``, as `integra migrate` would."""
    engine = create_sync_engine(sync_url(db))
    try:
        with engine.begin() as connection:
            config = migrations.alembic_config(db)
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(
    *args: str,
    database_url: str,
    data_dir: Path,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `integra` in its own process, as an operator would (with only the `INTEGRA_`
    settings given in `env`, none of the caller's)."""
    extra = env or {}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INTEGRA_") or k == "INTEGRA_ACCESS_LOG"
    }
    env |= {"DATABASE_URL": database_url, "INTEGRA_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    env |= extra
    return subprocess.run(
        [sys.executable, "-m", "node", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly which databases the suite really ran on."""
    counts: dict[str, int] = {}
    for report in terminalreporter.stats.get("passed", []):
        for backend in ("sqlite", "postgresql"):
            if f"[{backend}" in report.nodeid or f"-{backend}]" in report.nodeid:
                counts[backend] = counts.get(backend, 0) + 1
    summary = ", ".join(f"{n} on {b}" for b, n in sorted(counts.items())) or "none"
    terminalreporter.write_line(f"database-backed tests passed: {summary}")
