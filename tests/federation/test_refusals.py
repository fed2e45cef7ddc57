"""What the hub refuses, each entry on its own, while it applies the rest of the feed."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from federation import keys
from federation.canonical import canonical
from federation.merkle import leaf_hash, root
from node.settings import sync_url
from tests.conftest import Database, free_port, run_cli

NOW = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
BODY = {
    "kind": "practice",
    "title": "Mentoring",
    "language": "en",
    "summary": "Mentors help.",
    "evaluation": {"type": "none"},
    "review_label": "self_reported",
    "licence": "CC0-1.0",
}


class Peer:
    """A directory of entry files served by `forger.py`, and the keys to sign them."""

    def __init__(self, directory: Path, origin: str) -> None:
        self.dir, self.origin = directory, origin
        (directory / "entries").mkdir(parents=True)
        (directory / "origin").write_text(origin)
        self.key = keys.generate()
        self.raw: list[bytes] = []

    def payload(self, rid: str, version: int, body: Any = BODY, **changes: Any) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "seq": len(self.raw) + 1,
            "type": "practice",
            "id": f"{self.origin}:{rid}",
            "version": version,
            "op": "upsert",
            "body": body,
            "time": NOW,
        } | changes

    def add(self, payload: dict[str, Any], key: keys.SigningKey | None = None) -> None:
        key = key or self.key
        envelope = {"payload": payload, "key": key.key_id, "sig": key.sign(canonical(payload))}
        self.add_raw(json.dumps(envelope).encode())

    def add_raw(self, data: bytes) -> None:
        self.raw.append(data)
        (self.dir / "entries" / f"{len(self.raw)}.json").write_bytes(data)

    def checkpoint(self) -> None:
        leaves = []
        for data in self.raw:
            try:
                leaves.append(leaf_hash(canonical(json.loads(data)["payload"])))
            except Exception:
                leaves.append(b"\0" * 32)
        body = {
            "origin": self.origin,
            "size": len(self.raw),
            "root": root(leaves).hex(),
            "time": NOW,
        }
        signed = {"checkpoint": body, "key": self.key.key_id, "sig": self.key.sign(canonical(body))}
        (self.dir / "checkpoint.json").write_text(json.dumps(signed))


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    processes = []

    def start(peer: Peer) -> str:
        port = free_port()
        processes.append(
            subprocess.Popen(
                [sys.executable, str(Path(__file__).parent / "forger.py"), str(peer.dir), str(port)]
            )
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{url}/nothing", timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        return url

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def hub_cli(db: str, data: Path, *args: str) -> Any:
    return run_cli(*args, database_url=db, data_dir=data)


def rows(db: str, sql: str) -> list[Any]:
    engine = create_engine(sync_url(db))
    with engine.connect() as conn:
        found = list(conn.execute(text(sql)))
    engine.dispose()
    return found


def due_now(db: str) -> None:
    engine = create_engine(sync_url(db))
    with engine.begin() as conn:
        conn.execute(text("UPDATE peer_sync SET next_attempt_at = NULL"))
    engine.dispose()


def test_bad_entries_are_refused_with_reasons_and_the_rest_applied(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    peer = Peer(tmp_path / "pt", "PT")
    stranger, revoked = keys.generate(), keys.generate()
    peer.add(peer.payload("a", 1))  # 1 accepted
    tampered = json.dumps(
        {
            "payload": peer.payload("b", 1),
            "key": peer.key.key_id,
            "sig": peer.key.sign(canonical(peer.payload("b", 1))),
        }
    )
    peer.add_raw(tampered.replace("Mentoring", "Mentorinh").encode())  # 2 one byte changed
    peer.add(peer.payload("c", 1), key=stranger)  # 3 unenrolled key
    peer.add(peer.payload("d", 1) | {"id": "FR:d"})  # 4 another namespace
    peer.add(peer.payload("e", 1), key=revoked)  # 5 revoked key
    peer.add(peer.payload("a", 3, BODY | {"title": "Mentoring, v3"}))  # 6 accepted update
    peer.add(peer.payload("a", 2))  # 7 replayed older
    peer.add_raw(b'{"payload": {"seq": 8}, "payload": {"seq": 8}, "key": "k", "sig": "s"}')  # 8
    peer.add_raw(b'{"payload": ' + b"[" * 60 + b"]" * 60 + b', "key": "k", "sig": "s"}')  # 9
    peer.add_raw(b'{"payload": "' + b"x" * (5 * 1024 * 1024) + b'", "key": "k", "sig": "s"}')  # 10
    peer.add(peer.payload("f", 1, BODY | {"summary": "Write to a.b@example.org"}))  # 11 e-mail
    peer.add(peer.payload("g", 1))  # 12 accepted
    peer.checkpoint()
    url = serve(peer)

    db, data = database.fresh_copy(), tmp_path / "hub"
    enrolled = hub_cli(
        db,
        data,
        "hub",
        "enrol",
        "--country",
        "PT",
        "--url",
        url,
        "--key",
        peer.key.public_b64,
        "--key",
        revoked.public_b64,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert hub_cli(db, data, "hub", "revoke-key", revoked.key_id, "--at", past).returncode == 0

    result = hub_cli(db, data, "hub", "sync")
    assert "PT: 3 applied, 0 unchanged, 9 refused" in result.stdout, result.stdout + result.stderr
    held = dict(rows(db, "SELECT record_id, version FROM federated_record"))
    assert held == {"PT:a": 3, "PT:g": 1}
    reasons = {
        seq: reason
        for seq, reason in rows(db, "SELECT seq, reason FROM sync_refusal WHERE seq IS NOT NULL")
    }
    assert "signature does not match" in reasons[2]
    assert "not enrolled" in reasons[3]
    assert "outside the PT namespace" in reasons[4]
    assert "after its revocation" in reasons[5]
    assert "replay of version 2" in reasons[7]
    for seq in (8, 9, 10):
        assert "unreadable entry" in reasons[seq], reasons[seq]
    assert "personal data" in reasons[11] and "e-mail" in reasons[11]

    due_now(db)
    again = hub_cli(db, data, "hub", "sync")
    assert "PT: 0 applied, 0 unchanged, 0 refused" in again.stdout


def test_a_rewritten_history_is_refused_and_nothing_of_it_applied(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    peer = Peer(tmp_path / "gr", "GR")
    peer.add(peer.payload("a", 1))
    peer.add(peer.payload("b", 1))
    peer.checkpoint()
    url = serve(peer)
    db, data = database.fresh_copy(), tmp_path / "hub"
    hub_cli(db, data, "hub", "enrol", "--country", "GR", "--url", url, "--key", peer.key.public_b64)
    assert "GR: 2 applied" in hub_cli(db, data, "hub", "sync").stdout

    rewritten = peer.payload("a", 1, BODY | {"title": "Quietly changed"}) | {"seq": 1}
    peer.raw[0] = json.dumps(
        {"payload": rewritten, "key": peer.key.key_id, "sig": peer.key.sign(canonical(rewritten))}
    ).encode()
    (peer.dir / "entries" / "1.json").write_bytes(peer.raw[0])
    peer.add(peer.payload("c", 1))
    peer.checkpoint()
    due_now(db)
    result = hub_cli(db, data, "hub", "sync")
    assert result.returncode == 2 and "history was rewritten" in result.stderr
    assert dict(rows(db, "SELECT record_id, version FROM federated_record")) == {
        "GR:a": 1,
        "GR:b": 1,
    }
    [(cursor, error)] = rows(db, "SELECT cursor, last_error FROM peer_sync")
    assert cursor == 2 and "history was rewritten" in error
