"""Signed peers a test controls: entry files served by `forger.py` as a real HTTP process."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from federation import feed, keys
from federation.canonical import canonical
from federation.feed import body_digest
from federation.merkle import leaf_hash, root
from federation.models import FederatedRecord, NodeKey, PeerKey
from federation.models import Peer as PeerRow
from node.core.settings import Settings, sync_url
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

    def envelope(
        self, payload: dict[str, Any], key: keys.SigningKey | None = None
    ) -> dict[str, Any]:
        key = key or self.key
        return {"payload": payload, "key": key.key_id, "sig": key.sign(canonical(payload))}

    def add(self, payload: dict[str, Any], key: keys.SigningKey | None = None) -> None:
        self.add_raw(json.dumps(self.envelope(payload, key)).encode())

    # --- feed v2: the payload signs the body's hash, the body travels beside it -------------

    def payload_v2(
        self, rid: str, version: int, body: Any = BODY, op: str = "upsert", **changes: Any
    ) -> dict[str, Any]:
        return {
            "v": 2,
            "origin": self.origin,
            "seq": len(self.raw) + 1,
            "type": "practice",
            "id": rid if ":" in rid else f"{self.origin}:{rid}",
            "version": version,
            "op": op,
            "body_hash": body_digest(body) if body is not None else None,
            "scope": "public",
            "time": NOW,
        } | changes

    def add_v2(
        self, payload: dict[str, Any], body: Any, key: keys.SigningKey | None = None
    ) -> dict[str, Any]:
        """A v2 page item: the signed envelope, and the body beside it."""
        item = self.envelope(payload, key) | {"body": body}
        self.add_raw(json.dumps(item).encode())
        return item

    # --- when this peer plays a hub -------------------------------------------------------

    def relay(self, envelope: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """A hub's entry carrying a node's envelope."""
        inner = envelope["payload"]
        return {
            "origin": self.origin,
            "seq": len(self.raw) + 1,
            "type": inner["type"],
            "id": inner["id"],
            "version": inner["version"],
            "op": inner["op"],
            "envelope": envelope,
            "time": NOW,
        } | changes

    def directory(self, nodes: dict[str, list[dict[str, Any]]]) -> None:
        """Sign and serve the hub's directory: origin -> keys {key_id, public_key, ...}."""
        body = {
            "origin": self.origin,
            "nodes": [{"origin": o, "keys": k} for o, k in nodes.items()],
            "time": NOW,
        }
        signed = {"directory": body, "key": self.key.key_id, "sig": self.key.sign(canonical(body))}
        (self.dir / "directory.json").write_text(json.dumps(signed))

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


def serving(tmp_path: Path) -> Iterator[Any]:
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


def held_records(db: str) -> dict[str, tuple[bool, str]]:
    """What a hub holds: each record's withdrawn flag and the origin's signed envelope, read
    where the hub keeps it (in its relay entry, or in the record on a mirror)."""
    engine = create_engine(sync_url(db))
    with Session(engine) as session:
        held = {
            r.record_id: (r.withdrawn, r.signed_envelope)
            for r in session.scalars(select(FederatedRecord))
        }
    engine.dispose()
    return held


def due_now(db: str) -> None:
    engine = create_engine(sync_url(db))
    with engine.begin() as conn:
        conn.execute(text("UPDATE peer_sync SET next_attempt_at = NULL"))
    engine.dispose()


def enrolled_hub(
    database: Database, tmp_path: Path, name: str, peers: dict[str, Peer]
) -> tuple[str, Path]:
    """A hub database with its signing key and these peers (url -> peer) enrolled (what
    `integra keys init` and `integra hub enrol` write; done here directly to keep tests short)."""
    db, data = database.fresh_copy(), tmp_path / name
    settings = Settings(database_url=db, data_dir=data, country="EU", role="hub")
    key = keys.generate()
    keys.save(key, feed.key_path(settings, key.key_id))
    engine = create_engine(sync_url(db))
    with Session(engine) as session:
        session.add(NodeKey(key_id=key.key_id, public_key=key.public_b64))
        for url, peer in peers.items():
            enrolled = PeerRow(origin=peer.origin, base_url=url)
            session.add(enrolled)
            session.flush()
            session.add(
                PeerKey(key_id=peer.key.key_id, peer_id=enrolled.id, public_key=peer.key.public_b64)
            )
        session.commit()
    engine.dispose()
    return db, data
