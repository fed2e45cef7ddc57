"""Longer troubles than a bad answer: the broker stopped in the middle of a sync run by Celery,
the hub stopped while its nodes go on publishing, and clocks hours apart between the node, the
hub and a mirror (Debian's `faketime`). Each ends with the pool an undisturbed pull gives."""

import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import KEPT_SETTINGS, REQUIRE_SERVICES, Database, free_port, run_cli
from tests.federation.forgery import BODY, Peer, enrolled_hub, rows
from tests.federation.test_crash import state_digest
from tests.federation.test_network_faults import add_peer, keyed, pool, synced
from tests.federation.test_sync import start

HUB = {"INTEGRA_COUNTRY": "EU", "INTEGRA_ROLE": "hub"}
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def publish(peer: Peer, first: int, count: int) -> None:
    """The node publishes `count` records from number `first` (and edits an earlier one)."""
    for n in range(first, first + count):
        peer.add(peer.payload(f"r{n}", 1, BODY | {"title": f"Mentoring programme {n}"}))
    if first:
        peer.add(peer.payload("r0", first + 1, BODY | {"title": f"Mentoring, edition {first}"}))
    peer.checkpoint()


def held(db: str) -> tuple[Any, ...]:
    """The records a hub holds (their digest and count) and what it relayed of them, in any
    order: the order of its relays follows when each peer's entries arrived."""
    relayed = rows(db, "SELECT record_id, version, op, body_hash FROM feed_entry")
    return *state_digest(db)[:2], sorted(tuple(r) for r in relayed)


def calm(database: Database, tmp_path: Path, urls: dict[str, Peer]) -> tuple[Any, ...]:
    """What a hub that pulled these peers once, undisturbed, holds."""
    db, data = enrolled_hub(database, tmp_path, "calm", urls)
    result = run_cli("hub", "sync", database_url=db, data_dir=data, env=HUB)
    assert result.returncode == 0, result.stderr
    return held(db)


def wait_until(what: str, check: Any, seconds: float, log: Path | None = None) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(
        f"timed out waiting for {what}: " + (log.read_text()[-3000:] if log else "")
    )


def cursors(db: str) -> dict[str, int]:
    return dict(
        rows(db, "SELECT p.origin, s.cursor FROM peer p JOIN peer_sync s ON s.peer_id = p.id")
    )


# --- the broker stopped during a sync ---------------------------------------------------------


def redis_server(port: int, log: Path) -> subprocess.Popen[bytes]:
    """A Redis of this test's own (the machine's shared one is never stopped)."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_until("Redis to answer", lambda: pong(port), 20, log)
    return process


def pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


REDIS_OUTAGE = 30.0  # seconds, as the issue says: several of Celery's reconnection attempts


def test_redis_stopped_for_30_s_during_a_sync_then_the_worker_catches_up(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    if database.backend == "sqlite":
        pytest.skip("the Celery path is the production set-up: run on PostgreSQL only")
    if shutil.which("redis-server") is None:
        if REQUIRE_SERVICES:
            pytest.fail("redis-server is required here (CI) but not installed")
        pytest.skip("redis-server not installed")
    peer = Peer(tmp_path / "gr", "GR")
    publish(peer, 0, 20)
    (peer.dir / "hold").touch()  # the first feed page waits: the sync is under way
    url = serve(peer)
    db, data = enrolled_hub(database, tmp_path, "hub", {url: peer})
    port = free_port()
    redis_log, log = tmp_path / "redis.log", tmp_path / "worker.log"
    broker = redis_server(port, redis_log)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("INTEGRA_") or k in KEPT_SETTINGS
    }
    env |= HUB | {
        "DATABASE_URL": db,
        "INTEGRA_DATA_DIR": str(data),
        "INTEGRA_BROKER_URL": f"redis://127.0.0.1:{port}/0",
        "INTEGRA_HUB_SYNC_INTERVAL": "PT1S",
    }
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "node.worker:celery",
                "worker",
                "--beat",
                f"--schedule={tmp_path / 'beat-schedule'}",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until("the pull to start", (peer.dir / "waiting").exists, 120, log)
        broker.terminate()
        broker.wait(timeout=10)
        stopped = time.monotonic()
        (peer.dir / "hold").unlink()  # the sync goes on, and ends, with the broker away
        publish(peer, 20, 5)  # and the node goes on publishing
        wait_until("the worker to miss the broker", lambda: "broker" in log.read_text(), 30, log)
        time.sleep(max(0.0, REDIS_OUTAGE - (time.monotonic() - stopped)))  # the outage itself
        assert worker.poll() is None, log.read_text()[-3000:]
        broker = redis_server(port, redis_log)
        wait_until("the hub to catch up", lambda: cursors(db).get("GR") == 26, 120, log)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        broker.terminate()
        broker.wait(timeout=10)
    text = log.read_text()
    assert "Connection to broker lost" in text or "Cannot connect to redis" in text, text[-3000:]
    assert held(db) == calm(database, tmp_path, {url: peer})
    assert rows(db, "SELECT reason FROM sync_refusal WHERE seq IS NOT NULL") == []
    assert rows(db, "SELECT failures, last_error FROM peer_sync") == [(0, None)]


# --- the hub stopped while the nodes publish ---------------------------------------------------

# A hub that is down misses rounds, and nothing else: each peer's cursor stays where it was,
# and no limit of a round counts from the last one (a backoff follows failures, and a stopped
# hub fails nothing; a checkpoint is stale only after INTEGRA_PEER_FRESHNESS, a day). So an
# outage of many one-second rounds proves what one of two minutes between one-minute rounds
# would, in seconds.
INTERVAL, MISSED = 1.0, 5


def serve_hub(db: str, data: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("INTEGRA_") or k in KEPT_SETTINGS
    }
    env |= HUB | {
        "DATABASE_URL": db,
        "INTEGRA_DATA_DIR": str(data),
        "INTEGRA_HUB_SYNC_INTERVAL": f"PT{INTERVAL:.0f}S",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "node", "serve", "--port", str(free_port())],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_the_hub_stopped_while_nodes_publish_catches_up_when_it_returns(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    nodes = [Peer(tmp_path / "pt", "PT"), Peer(tmp_path / "be", "BE")]
    for node in nodes:
        publish(node, 0, 5)
    urls = {serve(node): node for node in nodes}
    db, data = enrolled_hub(database, tmp_path, "hub", urls)
    log = tmp_path / "hub.log"
    hub = serve_hub(db, data, log)
    try:
        wait_until("the first rounds", lambda: cursors(db) == {"PT": 5, "BE": 5}, 120, log)
    finally:
        hub.terminate()
        hub.wait(timeout=30)
    # The hub is down; its nodes publish over several of its rounds.
    for n in range(MISSED):
        for node in nodes:
            publish(node, 5 + 3 * n, 3)
        time.sleep(INTERVAL)  # the outage itself: a round missed
    sizes = {node.origin: len(node.raw) for node in nodes}
    assert cursors(db) == {"PT": 5, "BE": 5}
    hub = serve_hub(db, data, log)
    try:
        wait_until("the hub to catch up", lambda: cursors(db) == sizes, 120, log)
    finally:
        hub.terminate()
        hub.wait(timeout=30)
    assert held(db) == calm(database, tmp_path, urls)
    assert rows(db, "SELECT count(*) FROM sync_refusal") == [(0,)]
    assert (
        rows(db, "SELECT failures, last_error, stale_reason FROM peer_sync")
        == [(0, None, None)] * 2
    )


# --- clocks hours apart --------------------------------------------------------------------------


def skewed(offset: str) -> dict[str, str]:
    """The environment of a process whose clock is `offset` (e.g. +2h) from the others':
    libfaketime's wall clock; its monotonic clock (timeouts) left alone."""
    return {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME": offset,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_DONT_RESET": "1",
    }


@pytest.mark.parametrize("offset", ["+2h", "-2h"])
def test_a_node_hours_ahead_or_behind_and_a_mirror_the_other_way_sync_all_the_same(
    database: Database, tmp_path: Path, offset: str
) -> None:
    if database.backend == "postgresql":
        pytest.skip(
            "SQLite only: every time a node writes then comes from its own (faked) clock; a"
            " PostgreSQL server keeps the machine's, a skew within the node, not between peers"
        )
    if not LIBFAKETIME.exists():
        if REQUIRE_SERVICES:
            pytest.fail("faketime is required here (CI): apt-get install faketime")
        pytest.skip("faketime not installed (apt-get install faketime)")
    from federation import keys
    from federation.models import PEER_HUB, PEER_NODE, PEER_READER

    node_key, hub_key, mirror_key = keys.generate(), keys.generate(), keys.generate()
    node = keyed(database, tmp_path / "pt", "PT", "node", node_key)
    add_peer(node.database_url or "", "EU", "http://127.0.0.1:9", hub_key.public_b64, PEER_READER)
    process, node_url = start(
        "node",
        tmp_path,
        skewed(offset)
        | {
            "INTEGRA_COUNTRY": "PT",
            "DATABASE_URL": node.database_url or "",
            "INTEGRA_DATA_DIR": str(tmp_path / "pt"),
        },
        "--sample-data",
    )
    try:
        clock = httpx.get(f"{node_url}/federation/v1/checkpoint").json()["checkpoint"]["time"]
        # The limits of a real deployment: a node started under faketime answers slowly.
        hub = keyed(database, tmp_path / "hub", "EU", "hub", hub_key).model_copy(
            update={"peer_request_deadline": timedelta(seconds=60)}
        )
        add_peer(hub.database_url or "", "PT", node_url, node_key.public_b64, PEER_NODE)
        result = synced(hub)
        published = httpx.get(f"{node_url}/federation/v1/feed", params={"limit": 1000}).json()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert result.applied >= 10 and result.refused == 0 and result.stale is None, (result, clock)
    latest = {e["payload"]["id"]: e["payload"]["version"] for e in published["entries"]}
    assert (
        dict(rows(hub.database_url or "", "SELECT record_id, version FROM federated_record"))
        == latest
    )

    # A mirror with its clock the other way pulls the hub (a real process, on this clock).
    other = "-2h" if offset == "+2h" else "+2h"
    add_peer(hub.database_url or "", "FR", "http://127.0.0.1:9", mirror_key.public_b64, PEER_NODE)
    process, hub_url = start(
        "hub",
        tmp_path,
        HUB
        | {
            "INTEGRA_HUB_SYNC_INTERVAL": "PT1H",
            "DATABASE_URL": hub.database_url or "",
            "INTEGRA_DATA_DIR": str(tmp_path / "hub"),
        },
    )
    try:
        mirror = keyed(database, tmp_path / "fr", "FR", "node", mirror_key)
        add_peer(mirror.database_url or "", "EU", hub_url, hub_key.public_b64, PEER_HUB)
        env = skewed(other) | {"INTEGRA_COUNTRY": "FR"}
        pulled = run_cli(
            "mirror",
            "sync",
            database_url=mirror.database_url or "",
            data_dir=tmp_path / "fr",
            env=env,
        )
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert pool(mirror.database_url or "")[:2] == pool(hub.database_url or "")[:2]
