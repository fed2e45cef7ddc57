import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation import feed, keys, trust
from federation.models import NodeKey
from node.core.auth import system_principal
from node.core.db import create_engine as create_async_engine
from node.core.settings import Settings, async_url
from tests.conftest import Database
from tests.factories import Headers, make_user
from tests.federation import forgery

T = TypeVar("T")
OPERATOR = system_principal("test")
HUB_ENV = {"INTEGRA_COUNTRY": "EU", "INTEGRA_ROLE": "hub"}
FAST = {"INTEGRA_HUB_SYNC_INTERVAL": "PT1S"}


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    """A Portuguese node, federation switched on."""
    return Settings(database_url=database.url, data_dir=tmp_path, country="PT")


@pytest.fixture
async def signing_key(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> keys.SigningKey:
    key = keys.generate()
    keys.save(key, feed.key_path(settings, key.key_id))
    async with sessions() as session:
        session.add(NodeKey(key_id=key.key_id, public_key=key.public_b64))
        await session.commit()
    return key


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start forged peers (`forgery.Peer`) as real HTTP processes; stopped after the test."""
    yield from forgery.serving(tmp_path)


# --- a federation of real processes (nodes, a hub, a mirror), set up in this process ----------


def in_db(db: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction on a database (set-up in this process: an
    `integra` command per step would cost seconds each)."""

    async def run() -> T:
        engine = create_async_engine(async_url(db), pooled=False)
        try:
            async with async_sessionmaker(engine, expire_on_commit=False)() as session:
                done = await work(session)
                await session.commit()
                return done
        finally:
            await engine.dispose()

    return asyncio.run(run())


def member(db: str, data: Path, country: str, role: str = "node") -> tuple[str, Headers]:
    """As `integra keys init` and an admin with a token: the public key and the headers."""
    return new_signing_key(db, data, country, role), administrator(db)


def new_signing_key(db: str, data: Path, country: str, role: str = "node") -> str:
    """As `integra keys init`: the public key."""
    settings = Settings(database_url=db, data_dir=data, country=country, role=role)
    _, public, _ = in_db(db, lambda s: trust.create_signing_key(s, settings, by=OPERATOR))
    return public


def administrator(db: str, email: str | None = None, name: str | None = None) -> Headers:
    """As `integra user add --role admin` and `integra token create`: the headers."""
    engine = create_async_engine(async_url(db), pooled=False)
    try:
        return asyncio.run(make_user(async_sessionmaker(engine), "admin", email=email, name=name))
    finally:
        asyncio.run(engine.dispose())


def enrol(db: str, origin: str, url: str, public: str, kind: str) -> None:
    """As `integra hub enrol` (kind node) and `integra mirror add` (kind hub) do."""
    parsed = trust.parse_public_keys([public])
    in_db(
        db,
        lambda s: trust.enrol_peer(
            s, origin=origin, url=url, public_keys=parsed, kind=kind, by=OPERATOR
        ),
    )


def serve_node(name: str, tmp: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`python -m node serve` with only the `INTEGRA_` settings in `env`, and the suite's one
    API process (tests/conftest.py): the default, one per core, would start three processes
    (the server and two workers, each importing the whole app) for each node."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INTEGRA_") or k in ("INTEGRA_ACCESS_LOG", "INTEGRA_WORKERS")
    }
    clean.pop("DATABASE_URL", None)
    with (tmp / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "node", "serve", "--port", str(port)],
            env=clean | env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(what: str, check: Callable[[], Any], seconds: float = 120) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
