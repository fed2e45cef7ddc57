"""How a hub's sync round uses its processes and its database: peers with a large backlog are
synced side by side (by forked helpers from `integra hub sync`, spawned ones from a round run
in a thread), a killed hub leaves no helper importing behind its back, and no transaction stays
open (no write lock on SQLite) while a peer's pages arrive."""

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url, select
from sqlalchemy.orm import Session

from federation.models import Peer as PeerRow
from federation.sync import PARALLEL_BACKLOG, Job, Round, helpers, run_round, sync_under_lease
from node.core.db import create_sync_engine
from node.core.settings import Settings, sync_url
from tests.conftest import KEPT_SETTINGS, Database, run_cli
from tests.federation.forgery import BODY, Peer, enrolled_hub, rows
from tests.federation.test_crash import HUB, state_digest

ONE, TWO = {"INTEGRA_HUB_SYNC_WORKERS": "1"}, {"INTEGRA_HUB_SYNC_WORKERS": "2"}


def busy_peer(tmp_path: Path, origin: str, entries: int) -> Peer:
    peer = Peer(tmp_path / origin.lower(), origin)
    for n in range(entries):
        peer.add(peer.payload(f"r{n}", 1, BODY | {"title": f"Mentoring programme {n}"}))
    peer.checkpoint()
    return peer


def cursors(db: str) -> dict[str, int]:
    return dict(
        rows(db, "SELECT p.origin, s.cursor FROM peer p JOIN peer_sync s ON s.peer_id = p.id")
    )


def wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.1)


def test_peers_are_synced_side_by_side_and_a_killed_hub_leaves_no_helper_importing(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    # Largest backlog first: this process takes A, its helper B, then C.
    sizes = {"AT": PARALLEL_BACKLOG + 600, "BE": PARALLEL_BACKLOG + 300, "CY": PARALLEL_BACKLOG}
    peers = {o: busy_peer(tmp_path, o, n) for o, n in sizes.items()}
    urls = {serve(peer): peer for peer in peers.values()}

    calm_db, calm_data = enrolled_hub(database, tmp_path, "calm", urls)
    calm = run_cli("hub", "sync", database_url=calm_db, data_dir=calm_data, env=HUB | ONE)
    assert calm.returncode == 0, calm.stderr

    db, data = enrolled_hub(database, tmp_path, "busy", urls)
    for origin in ("AT", "CY"):  # slow peers: their pages wait until the test lets them go
        (peers[origin].dir / "hold").touch()
    hub = background_sync(db, data, TWO, tmp_path / "hub.log")
    try:
        # B is imported whole while A, the first peer, is still waiting for its pages.
        imported = lambda: cursors(db).get("BE") == sizes["BE"]  # noqa: E731
        wait_for(imported, 60, f"BE imported beside AT: {(tmp_path / 'hub.log').read_text()}")
        assert cursors(db).get("AT", 0) == 0
        waiting = (peers["CY"].dir / "waiting").exists
        wait_for(waiting, 60, "the helper to go on to CY, whose pages wait too")
        helpers = children(hub.pid)
        assert helpers, "the hub started no helper process"
    finally:
        hub.send_signal(signal.SIGKILL)
        hub.wait(timeout=30)
    for origin in ("AT", "CY"):
        (peers[origin].dir / "hold").unlink()
    # Nothing of the hub may go on once it is killed: its helpers die with it, so the pages
    # now released reach nobody.
    gone = lambda: not any(alive(pid) for pid in helpers)  # noqa: E731
    wait_for(gone, 30, f"the helpers {helpers} to die with the hub: a helper outlived the hub")
    assert cursors(db).get("AT", 0) == cursors(db).get("CY", 0) == 0, "a helper outlived the hub"

    again = run_cli("hub", "sync", database_url=db, data_dir=data, env=HUB | TWO)
    assert again.returncode == 0, again.stderr
    for origin in ("AT", "CY"):
        assert f"{origin}: {sizes[origin]} applied, 0 unchanged, 0 refused" in again.stdout
    assert cursors(db) == sizes
    # The same records as a hub that synced the peers one after the other (the hub's own feed
    # orders them differently: it relays in the order it applied).
    assert state_digest(db)[:2] == state_digest(calm_db)[:2]
    assert rows(db, "SELECT count(*) FROM sync_refusal WHERE seq IS NOT NULL") == [(0,)]


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def background_sync(db: str, data: Path, workers: dict[str, str], log: Path) -> Any:
    """`integra hub sync` started in its own process, its output in `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "node", "hub", "sync"],
            env=hub_env(db, data) | workers,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def hub_env(db: str, data: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("INTEGRA_") or k in KEPT_SETTINGS
    }
    return env | HUB | {"DATABASE_URL": db, "INTEGRA_DATA_DIR": str(data)}


def test_no_transaction_is_open_while_a_peer_answers(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    """On SQLite an open transaction holds the write lock: the hub's API could not write for as
    long as a large backlog takes to arrive. On PostgreSQL it would sit idle in transaction.
    The job runs as a round runs it (under its lease, on the job's one connection); every
    answer of the peer (its keys, its checkpoint, each page) finds no transaction open."""
    peer = busy_peer(tmp_path, "PT", 1200)
    url = serve(peer)
    db, _data = enrolled_hub(database, tmp_path, "hub", {url: peer})
    free_while_fetching: list[tuple[str, bool]] = []

    def probe(response: httpx.Response) -> None:
        free = no_open_transaction(database, db)
        free_while_fetching.append((response.request.url.path, free))

    engine = create_sync_engine(db)
    with Session(engine) as session:
        enrolled = session.scalar(select(PeerRow))
        assert enrolled is not None
        peer_id = enrolled.id
    job = Job(sync_url(db), timedelta(minutes=5), 30.0, None)
    with httpx.Client(event_hooks={"response": [probe]}) as client:
        result = sync_under_lease(job, lambda: Session(engine), engine, client, peer_id)
    engine.dispose()
    assert isinstance(result, Round) and result.applied == 1200, result
    paths = {path for path, _ in free_while_fetching}
    assert {"/federation/v1/keys", "/federation/v1/checkpoint", "/federation/v1/feed"} <= paths
    assert all(free for _, free in free_while_fetching), free_while_fetching


def no_open_transaction(database: Database, db: str) -> bool:
    if database.backend == "sqlite":
        path = make_url(sync_url(db)).database
        assert path
        conn = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:  # database is locked
            return False
        finally:
            conn.close()
    [(idle,)] = rows(
        db,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()",
    )
    return idle == 0


def test_a_key_revoked_while_its_entries_arrive_signs_nothing_after_its_revocation(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    """The operator can revoke a key while the hub waits for that node's pages (no write lock
    is held meanwhile), and what the key signed after the revocation is then refused."""
    peer = busy_peer(tmp_path, "PT", 3)
    url = serve(peer)
    db, data = enrolled_hub(database, tmp_path, "hub", {url: peer})
    (peer.dir / "hold").touch()
    hub = background_sync(db, data, ONE, tmp_path / "hub.log")
    try:
        running = lambda: rows(db, "SELECT count(*) FROM peer_sync WHERE running_since IS NOT NULL")  # noqa: E731
        wait_for(lambda: running() == [(1,)], 60, "the hub to start on PT")
        waiting = (peer.dir / "waiting").exists  # its keys read, it waits for the first page
        wait_for(waiting, 60, "the hub to ask PT for its first page")
        past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
        revoked = run_cli(
            "hub", "revoke-key", peer.key.key_id, "--at", past, database_url=db, data_dir=data
        )
        assert revoked.returncode == 0, revoked.stderr
        (peer.dir / "hold").unlink()
        assert hub.wait(timeout=60) == 0, (tmp_path / "hub.log").read_text()
    finally:
        if hub.poll() is None:
            hub.kill()
            hub.wait()
    assert "PT: 0 applied, 0 unchanged, 3 refused" in (tmp_path / "hub.log").read_text()
    reasons = [r for (r,) in rows(db, "SELECT reason FROM sync_refusal WHERE seq IS NOT NULL")]
    assert len(reasons) == 3 and all("after its revocation" in r for r in reasons), reasons
    assert rows(db, "SELECT count(*) FROM federated_record") == [(0,)]


def test_a_round_run_from_a_thread_spawns_its_helpers_and_syncs_side_by_side(
    database: Database, tmp_path: Path, serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded server runs its rounds from a thread: its helpers are spawned, not forked
    (a forked child could inherit a lock another thread holds), and still take peers of their
    own while this process waits for a slow one."""
    sizes = {"DE": PARALLEL_BACKLOG + 100, "DK": PARALLEL_BACKLOG}
    peers = {o: busy_peer(tmp_path, o, n) for o, n in sizes.items()}
    db, data = enrolled_hub(database, tmp_path, "hub", {serve(p): p for p in peers.values()})
    (peers["DE"].dir / "hold").touch()  # the first peer, this process's, is slow
    settings = Settings(database_url=db, data_dir=data, country="EU", role="hub")
    engine = create_sync_engine(db)
    methods: list[str] = []
    outcome: dict[str, Any] = {}
    context = helpers.start_context

    def recorded(engine: Any) -> Any:  # how the round starts its helpers
        chosen = context(engine)
        methods.append(chosen.get_start_method())
        return chosen

    monkeypatch.setattr(helpers, "start_context", recorded)

    def round_in_a_thread() -> None:
        outcome.update(
            run_round(
                lambda: Session(engine), interval=timedelta(minutes=5), settings=settings, workers=2
            )
        )

    thread = threading.Thread(target=round_in_a_thread)
    thread.start()
    try:
        imported = lambda: cursors(db).get("DK") == sizes["DK"]  # noqa: E731
        wait_for(imported, 60, "DK imported by a helper while DE waits")
        assert cursors(db).get("DE", 0) == 0
    finally:
        (peers["DE"].dir / "hold").unlink()
        thread.join(timeout=120)
        engine.dispose()
    assert methods == ["spawn"]
    assert {o: (r.applied, r.refused) for o, r in outcome.items()} == {
        o: (n, 0) for o, n in sizes.items()
    }
    assert cursors(db) == sizes
