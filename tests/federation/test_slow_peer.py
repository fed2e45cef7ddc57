"""One slow or stale peer delays nobody and freezes nobody silently: a peer that trickles bytes
is cut (a failure with its reason and backoff, for that peer only) while the others sync in
the same round; a stale, replayed or shrunk checkpoint flags the peer stale with its reason, in
`integra hub sync` and in the hub's peer status; a peer's URL in plain http:// to another
machine is refused."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from federation import keys
from federation.canonical import canonical
from federation.merkle import leaf_hash, root
from federation.models import Peer as PeerRow
from federation.models import PeerSync
from node.app import create_app
from node.core.db import create_engine, create_sync_engine, session_factory
from node.core.settings import Settings, async_url
from tests.conftest import Database, run_cli
from tests.factories import make_user
from tests.federation.forgery import BODY, Peer, due_now, enrolled_hub, rows
from tests.federation.test_crash import HUB

# Short limits, so that the slow peers are given up on within seconds.
LIMITS = {
    "INTEGRA_PEER_RATE_GRACE": "PT2S",
    "INTEGRA_PEER_MIN_RATE": "1024",
    "INTEGRA_PEER_REQUEST_DEADLINE": "PT4S",
}


def peer_with(tmp_path: Path, origin: str, entries: int) -> Peer:
    peer = Peer(tmp_path / origin.lower(), origin)
    for n in range(entries):
        peer.add(peer.payload(f"r{n}", 1, BODY | {"title": f"Mentoring programme {n}"}))
    peer.checkpoint()
    return peer


def sign_checkpoint(peer: Peer, size: int, at: datetime) -> None:
    """Serve a checkpoint of the peer's first `size` entries, validly signed at `at`."""
    leaves = [leaf_hash(canonical(json.loads(data)["payload"])) for data in peer.raw[:size]]
    body = {
        "origin": peer.origin,
        "size": size,
        "root": root(leaves).hex(),
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    signed = {"checkpoint": body, "key": peer.key.key_id, "sig": peer.key.sign(canonical(body))}
    (peer.dir / "checkpoint.json").write_text(json.dumps(signed))


def states(db: str) -> dict[str, PeerSync]:
    engine = create_sync_engine(db)
    with Session(engine, expire_on_commit=False) as session:
        found = {
            peer.origin: state
            for peer, state in session.execute(
                select(PeerRow, PeerSync).join(PeerSync, PeerSync.peer_id == PeerRow.id)
            )
        }
    engine.dispose()
    return found


def hub_sync(db: str, data: Path, env: dict[str, str] | None = None) -> Any:
    return run_cli("hub", "sync", database_url=db, data_dir=data, env=HUB | (env or {}))


def peer_status(db: str, data: Path) -> dict[str, dict[str, Any]]:
    """What `GET /api/v1/hub/peers` answers an administrator, by origin."""

    async def read() -> dict[str, dict[str, Any]]:
        settings = Settings(database_url=db, data_dir=data, country="EU", role="hub")
        engine = create_engine(async_url(db), pooled=False)
        try:
            admin = await make_user(session_factory(engine), "admin")
            app = create_app(settings, engine=engine)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
                response = await c.get("/api/v1/hub/peers", headers=admin)
        finally:
            await engine.dispose()
        assert response.status_code == 200, response.text
        return {peer["origin"]: peer for peer in response.json()}

    return asyncio.run(read())


def test_peers_that_trickle_bytes_are_cut_and_the_others_sync_meanwhile(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    steady = peer_with(tmp_path, "PT", 3)
    trickling = peer_with(tmp_path, "BE", 3)  # its answers: one byte every 50 ms
    (trickling.dir / "dribble").write_text("50")
    stalling = peer_with(tmp_path, "CY", 3)  # its status line and headers too
    (stalling.dir / "dribble").write_text("50 headers")
    # The slow peers enrolled first: synced one after another, they would hold PT's sync.
    urls = {serve(peer): peer for peer in (trickling, stalling, steady)}
    db, data = enrolled_hub(database, tmp_path, "hub", urls)

    result = hub_sync(db, data, LIMITS | {"INTEGRA_HUB_SYNC_WORKERS": "1"})

    assert result.returncode == 2, result.stderr
    assert "PT: 3 applied, 0 unchanged, 0 refused" in result.stdout, result.stderr
    found = states(db)
    assert (found["PT"].cursor, found["PT"].failures, found["PT"].last_error) == (3, 0, None)
    trickled, stalled = found["BE"].last_error or "", found["CY"].last_error or ""
    assert "too slow" in trickled and "under the minimum of 1024 bytes/s" in trickled, trickled
    assert "too slow: no whole answer by its deadline" in stalled, stalled
    for origin in ("BE", "CY"):
        state = found[origin]
        assert state.cursor == 0 and state.failures == 1
        assert state.next_attempt_at and state.last_attempt_at  # backed off
        assert state.next_attempt_at > state.last_attempt_at
        assert f"{origin}: failed: SyncError:" in result.stderr
        # PT was not kept waiting: it was synced before either slow peer was given up on.
        assert found["PT"].last_success_at and found["PT"].last_success_at < state.last_attempt_at
    assert rows(db, "SELECT origin, count(*) FROM federated_record GROUP BY origin") == [("PT", 3)]
    # The cut requests are failures of those peers only, retried after their backoff.
    again = hub_sync(db, data, LIMITS)
    assert again.returncode == 0 and "nothing is due" in again.stdout, again.stderr


def test_a_stale_replayed_or_shrunk_checkpoint_flags_the_peer_with_its_reason(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    peer = peer_with(tmp_path, "PT", 2)
    now = datetime.now(UTC)
    sign_checkpoint(peer, 2, now - timedelta(days=2))  # validly signed, two days ago
    db, data = enrolled_hub(database, tmp_path, "hub", {serve(peer): peer})

    old = hub_sync(db, data)
    assert old.returncode == 2, old.stderr
    assert "PT: 2 applied, 0 unchanged, 0 refused" in old.stdout  # its entries are sound
    assert "PT: stale: the checkpoint was signed at" in old.stderr
    status = peer_status(db, data)["PT"]
    assert status["stale"] is True and status["stale_since"] is not None
    assert "longer ago than 1 day" in status["stale_reason"], status

    sign_checkpoint(peer, 2, now)  # the node answers afresh: the flag goes
    due_now(db)
    fresh = hub_sync(db, data)
    assert fresh.returncode == 0, fresh.stderr
    status = peer_status(db, data)["PT"]
    assert (status["stale"], status["stale_since"], status["stale_reason"]) == (False, None, None)
    assert status["checkpoint_time"] is not None

    sign_checkpoint(peer, 2, now - timedelta(hours=1))  # an older answer, replayed
    due_now(db)
    replayed = hub_sync(db, data)
    assert replayed.returncode == 2
    assert "PT: failed: SyncError: the checkpoint was signed at" in replayed.stderr
    status = peer_status(db, data)["PT"]
    assert status["stale"] is True, status
    assert "before the last one accepted" in status["stale_reason"]
    assert "before the last one accepted" in status["last_error"]

    sign_checkpoint(peer, 1, now + timedelta(seconds=1))  # a shorter history, freshly signed
    due_now(db)
    shrunk = hub_sync(db, data)
    assert shrunk.returncode == 2
    assert "the feed shrank from 2 to 1 entries: history was rewritten" in shrunk.stderr
    status = peer_status(db, data)["PT"]
    assert status["stale"] is True and "history was rewritten" in status["stale_reason"]
    assert (status["last_seq"], status["checkpoint_size"], status["records_held"]) == (2, 2, 2)


def test_a_peer_url_in_plain_http_to_another_machine_is_refused(
    database: Database, tmp_path: Path
) -> None:
    db, data = database.fresh_copy(), tmp_path / "hub"
    key = keys.generate().public_b64

    def enrol(origin: str, url: str, env: dict[str, str] | None = None) -> Any:
        args = ("hub", "enrol", "--country", origin, "--url", url, "--key", key)
        return run_cli(*args, database_url=db, data_dir=data, env=HUB | (env or {}))

    refused = enrol("PT", "http://node.example.pt")
    assert refused.returncode == 1
    assert "plain http:// to another machine" in refused.stderr, refused.stderr
    mirrored = run_cli(
        "mirror",
        "add",
        "--url",
        "http://10.0.0.7:8000",
        "--key",
        key,
        database_url=db,
        data_dir=data,
    )
    assert mirrored.returncode == 1 and "https://" in mirrored.stderr, mirrored.stderr
    assert rows(db, "SELECT count(*) FROM peer") == [(0,)]

    assert enrol("PT", "https://node.example.pt").returncode == 0
    assert enrol("BE", "http://127.0.0.1:8001").returncode == 0  # this machine: the demo
    allowed = enrol("CY", "http://node.example.cy", {"INTEGRA_ALLOW_INSECURE_PEERS": "true"})
    assert allowed.returncode == 0, allowed.stderr
    assert sorted(rows(db, "SELECT origin, base_url FROM peer")) == [
        ("BE", "http://127.0.0.1:8001"),
        ("CY", "http://node.example.cy"),
        ("PT", "https://node.example.pt"),
    ]


def test_a_peer_enrolled_in_plain_http_is_not_synced(database: Database, tmp_path: Path) -> None:
    """A peer enrolled before URLs were checked (or with insecure peers allowed then): no
    request leaves for it, and its status says why."""
    peer = Peer(tmp_path / "pt", "PT")
    db, data = enrolled_hub(database, tmp_path, "hub", {"http://node.example.pt": peer})
    result = hub_sync(db, data)
    assert result.returncode == 2
    assert "PT: failed: SyncError: http://node.example.pt" in result.stderr
    error = states(db)["PT"].last_error or ""
    assert "plain http:// to another machine" in error and "INTEGRA_ALLOW_INSECURE_PEERS" in error
    assert states(db)["PT"].failures == 1
