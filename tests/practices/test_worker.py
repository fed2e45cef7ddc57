"""Production job path: a real Celery worker on Redis does the outbox work of a real node."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import KEPT_SETTINGS, REQUIRE_SERVICES, Database, free_port
from tests.factories import CONFIRMED
from tests.federation.conftest import administrator

REDIS = ("127.0.0.1", 6379)
BROKER = "redis://127.0.0.1:6379/14"


def redis_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def env(database: Database, tmp_path: Path) -> dict[str, str]:
    if not redis_up():
        if REQUIRE_SERVICES:
            pytest.fail("Redis is required here (CI) but does not answer on 127.0.0.1:6379")
        pytest.skip("Redis not reachable on 127.0.0.1:6379 (set CI=true to require it)")
    url = database.fresh_copy()
    base = {
        k: v for k, v in os.environ.items() if not k.startswith("INTEGRA_") or k in KEPT_SETTINGS
    }
    return base | {
        "DATABASE_URL": url,
        "INTEGRA_DATA_DIR": str(tmp_path),
        "INTEGRA_BROKER_URL": BROKER,
    }


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


@pytest.fixture
def node(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "node.worker:celery", "purge", "-f"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    port = free_port()
    process = start(["node", "serve", "--port", str(port)], env, tmp_path / "node.log")
    url = f"http://127.0.0.1:{port}"
    try:
        # Up, and not ready for one reason only: no worker yet (it starts in the test).
        wait_until(lambda: _only_the_worker_missing(httpx.get(f"{url}/readyz", timeout=5)), 60)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def _only_the_worker_missing(response: httpx.Response) -> bool:
    checks = response.json().get("checks", {})
    failing = {name for name, check in checks.items() if check["state"] not in ("ok", "off")}
    return response.status_code == 503 and failing == {"worker"}


def wait_until(check: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


def test_a_worker_on_redis_indexes_what_the_node_published(
    env: dict[str, str], node: str, tmp_path: Path
) -> None:
    # As `integra user add` and `token create` (tests/node/test_cli.py runs them)
    admin = administrator(env["DATABASE_URL"], email="w@example.org")
    created = httpx.post(
        f"{node}/api/v1/practices",
        headers=admin,
        json={
            "kind": "practice",
            "title": "Worker-indexed mentoring",
            "language": "en",
            "summary": "Indexed by a Celery worker.",
            "licence": "CC0-1.0",
        },
    )
    assert created.status_code == 201, created.text
    published = httpx.post(
        f"{node}/api/v1/practices/{created.json()['id']}/publish",
        json=CONFIRMED,
        headers=admin | {"If-Match": '"1"'},
    )
    assert published.status_code == 200

    def found() -> bool:
        page = httpx.get(f"{node}/api/v1/practices/search", params={"q": "worker indexed"})
        return page.json()["total"] == 1

    time.sleep(1.5)
    assert not found()  # with a broker, the node itself leaves the work to the workers
    worker = start(
        [
            "celery",
            "-A",
            "node.worker:celery",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        env,
        tmp_path / "worker.log",
    )
    try:
        wait_until(found, 60)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert "integra.outbox.process" in (tmp_path / "worker.log").read_text()
