"""Readiness tells the truth: `/readyz` names each part the node needs with its state, and
answers 503 when one fails: a broker with no worker, a federating node without its key, failed
outbox work, a hub whose peer keeps failing."""

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from federation import feed, keys, trust
from federation.models import Peer, PeerSync
from federation.sync.peer import record_failure
from node.app import create_app
from node.core import heartbeat, outbox
from node.core.auth import system_principal
from node.core.db import utcnow
from node.core.models import OutboxMessage
from node.core.settings import Role, Settings
from tests.conftest import KEPT_SETTINGS, REQUIRE_SERVICES, Database, free_port
from tests.practices.test_worker import redis_up

pytestmark = pytest.mark.anyio
BROKER = "redis://127.0.0.1:6379/13"


@asynccontextmanager
async def node(
    settings: Settings, connection: AsyncConnection, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, engine=connection.engine)
    app.state.session_factory = sessions
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://node.test") as client:
        yield client


async def ready(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    return response.status_code, response.json()


async def test_each_check_is_named_with_its_state(client: httpx.AsyncClient) -> None:
    status, body = await ready(client)
    assert status == 200 and body["status"] == "ready"
    states = {name: check["state"] for name, check in body["checks"].items()}
    assert states == {
        "database": "ok",
        "broker": "off",
        "worker": "off",
        "search": "ok",
        "signing_key": "off",
        "outbox": "ok",
        "peers": "off",
    }
    assert body["checks"]["worker"]["detail"].startswith("no broker configured")


async def test_a_federating_node_without_its_signing_key_is_not_ready(
    database: Database,
    tmp_path: Path,
    connection: AsyncConnection,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    settings = Settings(database_url=database.url, data_dir=tmp_path, country="GR")
    async with node(settings, connection, sessions) as client:
        status, body = await ready(client)
        assert status == 503 and body["checks"]["signing_key"]["state"] == "failed"
        assert "no signing key: run `integra keys init`" in body["checks"]["signing_key"]["detail"]
        assert body["detail"].startswith("signing_key: no signing key")

        async with sessions() as session:
            key_id, _, _ = await trust.create_signing_key(
                session, settings, by=system_principal("test")
            )
            await session.commit()
        status, body = await ready(client)
        assert status == 200 and body["checks"]["signing_key"]["detail"] == f"signs with {key_id}"

        feed.key_path(settings, key_id).unlink()  # the keys directory lost, or not mounted
        status, body = await ready(client)
        assert status == 503
        detail = body["checks"]["signing_key"]["detail"]
        assert detail == f"the signing key file is missing: {feed.key_path(settings, key_id)}"


async def test_failed_outbox_work_makes_the_node_not_ready_until_retried(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    session.add(
        OutboxMessage(
            topic="practice.changed",
            entity_id="0f1d3c9e-4c1b-4f63-9d65-1b7d0c5f2a11",
            attempts=outbox.MAX_ATTEMPTS,
            last_error="federation.tasks: FederationNotConfigured: no signing key",
        )
    )
    await session.commit()
    status, body = await ready(client)
    assert status == 503 and body["checks"]["outbox"]["state"] == "failed"
    assert body["checks"]["outbox"]["detail"].startswith("1 job(s) failed every attempt")
    await outbox.retry(session)  # what `integra jobs retry` does
    await session.commit()
    status, body = await ready(client)
    assert body["checks"]["outbox"] == {"state": "ok", "detail": "no failed jobs"}


async def test_a_hub_is_not_ready_while_a_peer_fails_for_longer_than_its_interval(
    database: Database,
    tmp_path: Path,
    connection: AsyncConnection,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    settings = Settings(
        database_url=database.url,
        data_dir=tmp_path,
        role=Role.hub,
        hub_sync_interval=timedelta(seconds=60),
    )
    key = keys.generate()
    async with sessions() as session:
        await trust.enrol_peer(
            session,
            origin="PT",
            url="http://127.0.0.1:9/",
            public_keys=trust.parse_public_keys([key.public_b64]),
            by=system_principal("test"),
        )
        await session.commit()
    async with node(settings, connection, sessions) as client:
        status, body = await ready(client)
        assert status == 200 and body["checks"]["peers"]["state"] == "ok"

        async with sessions() as session:
            peer = await session.scalar(select(Peer).where(Peer.origin == "PT"))
            assert peer is not None
            session.add(PeerSync(peer_id=peer.id, cursor=0, checkpoint_size=0, failures=0))
            await session.flush()
            await session.run_sync(lambda s: record_failure(s, peer, "connection refused"))
            await session.commit()
        status, body = await ready(client)
        assert status == 200  # one failure, enrolled a moment ago: not longer than its interval

        async with sessions() as session:
            enrolled = utcnow() - timedelta(minutes=5)
            await session.execute(update(Peer).values(enrolled_at=enrolled))
            await session.commit()
        status, body = await ready(client)
        assert status == 503 and body["checks"]["peers"]["state"] == "failed"
        detail = body["checks"]["peers"]["detail"]
        assert "failing for longer than 60 s: PT (1 failures: connection refused" in detail


async def test_a_node_whose_broker_is_down_names_the_broker(
    database: Database,
    tmp_path: Path,
    connection: AsyncConnection,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings = Settings(database_url=database.url, data_dir=tmp_path, broker_url=closed)
    async with node(settings, connection, sessions) as client:
        status, body = await ready(client)
    assert status == 503 and body["checks"]["broker"]["state"] == "failed"
    assert body["checks"]["broker"]["detail"].startswith("broker unreachable:")


async def test_a_worker_with_other_settings_than_the_node_does_not_count(
    database: Database,
    tmp_path: Path,
    connection: AsyncConnection,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    if not redis_up():
        pytest.skip("Redis not reachable on 127.0.0.1:6379")
    settings = Settings(database_url=database.url, data_dir=tmp_path, broker_url=BROKER)
    elsewhere = settings.model_copy(update={"country": "GR", "keys_dir": tmp_path / "other"})
    async with node(settings, connection, sessions) as client:
        for beating_as, wanted in ((elsewhere, 503), (settings, 200)):
            # What a worker's heartbeat thread writes (`heartbeat.Beating`), with its settings.
            detail = heartbeat.detail_of(heartbeat.WORKER, beating_as)
            async with sessions() as session:
                await session.run_sync(heartbeat.beat, heartbeat.WORKER, detail)
                await session.commit()
            status, body = await ready(client)
            assert status == wanted, body
            if wanted == 503:
                said = body["checks"]["worker"]["detail"]
                assert said.startswith("no worker runs with this node's settings: worker:")
                assert "country: GR on the worker, (not set) here" in said
                assert f"keys_dir: {tmp_path / 'other'} on the worker" in said


# --- as an operator meets it: a node on Redis, and its worker ------------------------------------


@pytest.fixture
def env(database: Database, tmp_path: Path) -> dict[str, str]:
    if not redis_up():
        if REQUIRE_SERVICES:
            pytest.fail("Redis is required here (CI) but does not answer on 127.0.0.1:6379")
        pytest.skip("Redis not reachable on 127.0.0.1:6379 (set CI=true to require it)")
    base = {
        k: v for k, v in os.environ.items() if not k.startswith("INTEGRA_") or k in KEPT_SETTINGS
    }
    return base | {
        "DATABASE_URL": database.fresh_copy(),
        "INTEGRA_DATA_DIR": str(tmp_path),
        "INTEGRA_BROKER_URL": BROKER,
    }


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)


def worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    args = ["celery", "-A", "node.worker:celery", "worker", "--pool=solo", "--loglevel=INFO"]
    quiet = ["--without-heartbeat", "--without-gossip", "--without-mingle"]
    return start([*args, *quiet], env, log)


def readiness_when(url: str, wanted: Callable[[httpx.Response], bool]) -> dict[str, Any]:
    """Poll /readyz until its answer is the one wanted; return its body."""
    deadline = time.monotonic() + 60
    last = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(f"{url}/readyz", timeout=10)
            if wanted(last):
                return dict(last.json())
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"readiness never became as wanted: {last and last.text}")


@pytest.fixture
def served(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = start(["node", "serve", "--port", str(port)], env, tmp_path / "node.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def test_a_node_with_a_broker_and_no_worker_is_not_ready_until_a_worker_runs(
    env: dict[str, str], served: str, tmp_path: Path
) -> None:
    body = readiness_when(served, lambda r: r.status_code == 503)
    failed = {n for n, c in body["checks"].items() if c["state"] != "ok" and c["state"] != "off"}
    assert failed == {"worker"}, body
    assert body["checks"]["broker"] == {"state": "ok", "detail": "broker answers"}
    assert "no Celery worker has sent a heartbeat" in body["checks"]["worker"]["detail"]
    assert body["detail"].startswith("worker: no Celery worker")

    process = worker(env, tmp_path / "worker.log")
    try:
        body = readiness_when(served, lambda r: r.status_code == 200)
        assert body["checks"]["worker"]["state"] == "ok"
        assert body["checks"]["worker"]["detail"].startswith("1 worker(s) alive")
    finally:
        stop(process)
    # A worker that stops says so: the node is not ready again at once, not a minute later.
    body = readiness_when(served, lambda r: r.status_code == 503)
    assert "no Celery worker has sent a heartbeat" in body["checks"]["worker"]["detail"]
