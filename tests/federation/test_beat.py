"""Production path of the hub: Celery beat schedules the pull, a worker on Redis does it."""

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KEPT_SETTINGS, REQUIRE_SERVICES, Database, run_cli
from tests.federation.forgery import BODY, Peer, rows
from tests.practices.test_worker import redis_up

BROKER = "redis://127.0.0.1:6379/11"  # its own: tests/node/test_readiness.py has 13


def test_celery_beat_pulls_each_enrolled_node_and_the_worker_applies_it(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    if database.backend == "sqlite":
        pytest.skip(
            "the beat path is the production set-up: run on PostgreSQL only (the pull itself"
            " is tested on both databases elsewhere)"
        )
    if not redis_up():
        if REQUIRE_SERVICES:
            pytest.fail("Redis is required here (CI) but does not answer on 127.0.0.1:6379")
        pytest.skip("Redis not reachable on 127.0.0.1:6379 (set CI=true to require it)")
    peer = Peer(tmp_path / "gr", "GR")
    for n in range(5):
        peer.add(peer.payload(f"p{n}", 1, BODY | {"title": f"Mentoring {n}"}))
    peer.checkpoint()
    url = serve(peer)
    db, data = database.fresh_copy(), tmp_path / "hub"
    enrolled = run_cli(
        "hub",
        "enrol",
        "--country",
        "GR",
        "--url",
        url,
        "--key",
        peer.key.public_b64,
        database_url=db,
        data_dir=data,
    )
    assert enrolled.returncode == 0, enrolled.stderr

    env = {
        k: v for k, v in os.environ.items() if not k.startswith("INTEGRA_") or k in KEPT_SETTINGS
    }
    env |= {
        "DATABASE_URL": db,
        "INTEGRA_DATA_DIR": str(data),
        "INTEGRA_ROLE": "hub",
        "INTEGRA_BROKER_URL": BROKER,
    }
    celery = [sys.executable, "-m", "celery", "-A", "node.worker:celery"]
    subprocess.run([*celery, "purge", "-f"], env=env, capture_output=True, timeout=60)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [
                *celery,
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
        deadline = time.monotonic() + 90
        held: list[Any] = []
        while time.monotonic() < deadline and len(held) < 5:
            time.sleep(0.5)
            held = rows(db, "SELECT record_id FROM federated_record")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    text = log.read_text()
    assert len(held) == 5, text[-3000:]
    assert "Scheduler: Sending due task hub-pull" in text
    assert "integra.hub.pull_peer" in text  # one task per due peer
    [(cursor, success)] = rows(db, "SELECT cursor, last_success_at FROM peer_sync")
    assert cursor == 5 and success is not None
