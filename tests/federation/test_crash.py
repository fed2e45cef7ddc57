"""A hub killed with SIGKILL in the middle of an import, then restarted, ends in the same state
as a hub that was left alone: batches land whole with their cursor, and nothing is applied
twice or skipped."""

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from federation.pool import PENDING_BATCH
from node.core.settings import sync_url
from tests.conftest import KEPT_SETTINGS, Database, free_port, run_cli
from tests.federation.forgery import BODY, Peer, enrolled_hub, rows

ENTRIES = 2000
HUB = {"INTEGRA_COUNTRY": "EU", "INTEGRA_ROLE": "hub"}


def feed_of_a_busy_node(peer: Peer) -> None:
    """New records, then edits and withdrawals of some of them, as a node's feed grows."""
    for n in range(ENTRIES - 200):
        body = BODY | {
            "title": f"Mentoring programme {n}",
            "summary": f"Mentors meet released people weekly, cohort {n % 97}.",
        }
        peer.add(peer.payload(f"r{n}", 1, body))
    for n in range(0, 1500, 15):  # 100 edits
        peer.add(peer.payload(f"r{n}", 2, BODY | {"title": f"Mentoring programme {n}, revised"}))
    for n in range(5, 1000, 10):  # 100 withdrawals
        peer.add(peer.payload(f"r{n}", 3, None) | {"op": "withdraw"})
    peer.checkpoint()


def env_hub(db: str, data: Path, *args: str) -> Any:
    return run_cli(*args, database_url=db, data_dir=data, env=HUB)


def state_digest(db: str) -> tuple[str, int, str]:
    """(origin, id, version, body hash) of every record, and the hub's own relay feed."""
    records = rows(
        db,
        "SELECT origin, record_id, version, withdrawn, body_hash FROM federated_record"
        " ORDER BY record_id",
    )
    relays = rows(db, "SELECT seq, record_id, version, op, body_hash FROM feed_entry ORDER BY seq")
    digest = hashlib.sha256(repr([tuple(r) for r in records]).encode()).hexdigest()
    relayed = hashlib.sha256(repr([tuple(r) for r in relays]).encode()).hexdigest()
    return digest, len(records), relayed


def searchable(db: str) -> list[tuple[Any, ...]]:
    """What the hub's search index holds: every live record's document and its text."""
    return [
        tuple(r)
        for r in rows(
            db,
            "SELECT record_id, title_norm, body_norm FROM search_document WHERE active"
            " ORDER BY record_id",
        )
    ]


def pending(db: str) -> int:
    try:
        return int(rows(db, "SELECT count(*) FROM federated_record WHERE NOT indexed")[0][0])
    except OperationalError:
        return -1  # busy for an instant


def cursor(db: str) -> int:
    engine = create_engine(sync_url(db))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT cursor FROM peer_sync")).scalar() or 0)
    except OperationalError:
        return 0  # not created yet, or busy for an instant
    finally:
        engine.dispose()


def serve_hub(db: str, data: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("INTEGRA_") or k in KEPT_SETTINGS
    }
    env |= HUB | {
        "DATABASE_URL": db,
        "INTEGRA_DATA_DIR": str(data),
        "INTEGRA_HUB_SYNC_INTERVAL": "PT1S",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "node", "serve", "--port", str(free_port())],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_kill_9_in_the_middle_of_an_import_then_restart_ends_in_the_same_state(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    peer = Peer(tmp_path / "pt", "PT")
    feed_of_a_busy_node(peer)
    url = serve(peer)

    calm_db, calm_data = enrolled_hub(database, tmp_path, "calm", {url: peer})
    result = env_hub(calm_db, calm_data, "hub", "sync")
    assert re.search(r"PT: \d+ applied, 0 unchanged, 0 refused", result.stdout), result.stderr
    calm = state_digest(calm_db)
    assert calm[1] == ENTRIES - 200

    db, data = enrolled_hub(database, tmp_path, "crash", {url: peer})
    log = tmp_path / "hub.log"
    hub = serve_hub(db, data, log)
    deadline = time.monotonic() + 120
    while cursor(db) == 0 and time.monotonic() < deadline and hub.poll() is None:
        time.sleep(0.02)
    hub.send_signal(signal.SIGKILL)
    hub.wait(timeout=30)
    at_kill = cursor(db)
    assert 0 < at_kill < ENTRIES, f"not killed mid-import (cursor {at_kill}): {log.read_text()}"
    # What landed is whole: each committed record with its relay in the hub's own feed.
    relayed: dict[str, int] = {}
    for record_id, version in rows(db, "SELECT record_id, version FROM feed_entry ORDER BY seq"):
        relayed[record_id] = version
    assert relayed == dict(rows(db, "SELECT record_id, version FROM federated_record"))

    hub = serve_hub(db, data, log)
    try:
        deadline = time.monotonic() + 180
        while (cursor(db) < ENTRIES or pending(db) != 0) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        hub.terminate()
        hub.wait(timeout=30)
    assert cursor(db) == ENTRIES, log.read_text()[-3000:]
    assert state_digest(db) == calm
    # The search index caught up after the restart, whatever the kill interrupted.
    assert pending(db) == pending(calm_db) == 0
    live = rows(calm_db, "SELECT count(*) FROM federated_record WHERE NOT withdrawn")[0][0]
    assert len(searchable(calm_db)) == live
    assert searchable(db) == searchable(calm_db)
    [(refused,)] = rows(db, "SELECT count(*) FROM sync_refusal")
    assert refused == 0


def test_the_index_catch_up_reads_only_pending_records(database: Database) -> None:
    """Each catch-up batch is found through the partial index of pending records, not by
    reading every record the hub holds (which made a 100,000-record catch-up quadratic)."""
    engine = create_engine(sync_url(database.fresh_copy()))
    with engine.connect() as conn:
        statement = PENDING_BATCH.compile(conn, compile_kwargs={"literal_binds": True})
        prefix = "EXPLAIN QUERY PLAN " if database.backend == "sqlite" else "EXPLAIN "
        if database.backend == "postgresql":
            conn.execute(text("SET enable_seqscan = off"))  # an empty table: no cost to compare
        plan = " ".join(str(row) for row in conn.execute(text(prefix + str(statement))))
    engine.dispose()
    assert "ix_federated_record_pending" in plan, plan
