"""Heartbeats: every running server and Celery worker writes a row every few seconds, with the
settings that decide where its records go, and removes it when it stops.

Readiness reads them to know whether a live worker consumes the node's broker with the node's
settings; a CLI command reads them to refuse to write through a database that a running node
serves with other settings (a practice imported without the node's country would never reach
its feed).
"""

import hashlib
import os
import socket
import threading
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from node.core.db import create_sync_engine, utcnow
from node.core.models import Heartbeat
from node.core.settings import Settings

SERVER = "server"
WORKER = "worker"
BEAT = timedelta(seconds=10)
# A process whose last beat is older than this is taken for gone (it missed several beats).
LIVE = timedelta(seconds=45)
# Rows of processes that died without a word are cleared after this.
FORGET = timedelta(days=1)

log = structlog.get_logger()


def digest(secret: str) -> str:
    """Enough of a hash to tell two secrets apart, never enough to print or recover one."""
    return hashlib.sha256(f"integra-settings:{secret}".encode()).hexdigest()[:16]


def fingerprint(settings: Settings) -> dict[str, str]:
    """The settings two processes writing one database must share: what a record becomes and
    where it goes (origin, signing keys, search index) and how tokens are hashed."""
    return {
        "role": settings.role.value,
        "country": settings.country or "",
        "keys_dir": str(settings.keys_path),
        "search_backend": settings.search_backend,
        "meili_url": settings.meili_url or "",
        "secret_key": digest(settings.secret_key),
    }


def differences(here: dict[str, str], there: dict[str, str], *, where: str) -> list[str]:
    """Each setting that differs, said plainly (secrets only as "differs")."""
    said = []
    for name in sorted(here.keys() | there.keys()):
        mine, theirs = here.get(name, ""), there.get(name, "")
        if mine == theirs:
            continue
        if name == "secret_key":
            said.append(f"secret_key: not the one {where}")
        else:
            said.append(f"{name}: {theirs or '(not set)'} {where}, {mine or '(not set)'} here")
    return said


def detail_of(kind: str, settings: Settings) -> dict[str, Any]:
    """What a server's or a worker's beat says: its settings, its configuration file and, for a
    worker, which broker it consumes."""
    detail: dict[str, Any] = {
        "settings": fingerprint(settings),
        "config_file": str(settings.config_file),
    }
    if kind == WORKER:
        detail["broker"] = digest(settings.broker_url or "")
    return detail


def process_id(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}"


def beat(session: Session, kind: str, detail: dict[str, Any]) -> None:
    """Say that this process is alive, with ``detail`` (its settings), and forget long-dead ones."""
    now = utcnow()
    row = session.get(Heartbeat, process_id(kind))
    if row is None:
        session.add(Heartbeat(id=process_id(kind), kind=kind, detail=detail, started_at=now))
    else:
        row.detail, row.beat_at = detail, now
    session.execute(delete(Heartbeat).where(Heartbeat.beat_at < now - FORGET))
    session.flush()


def forget(session: Session, kind: str) -> None:
    session.execute(delete(Heartbeat).where(Heartbeat.id == process_id(kind)))


def live(session: Session, kind: str) -> list[Heartbeat]:
    """The processes of this kind that beat recently, the latest first."""
    return list(
        session.scalars(
            select(Heartbeat)
            .where(Heartbeat.kind == kind, Heartbeat.beat_at >= utcnow() - LIVE)
            .order_by(Heartbeat.beat_at.desc())
        )
    )


class Beating:
    """Beats in a thread of its own, so a long job or a busy event loop never silences it."""

    def __init__(self, kind: str, settings: Settings, detail: dict[str, Any]) -> None:
        self.kind, self.detail = kind, detail
        self.engine = create_sync_engine(settings.sqlalchemy_url)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"{kind}-heartbeat", daemon=True)

    @classmethod
    def of(cls, kind: str, settings: Settings) -> "Beating":
        return cls(kind, settings, detail_of(kind, settings))

    def start(self) -> None:
        self._once()  # at once: a process is seen as soon as it is up
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        try:
            with Session(self.engine) as session:
                forget(session, self.kind)
                session.commit()
        except Exception:
            log.warning("heartbeat_not_removed", kind=self.kind, exc_info=True)
        self.engine.dispose()

    def _run(self) -> None:
        while not self.stopped.wait(BEAT.total_seconds()):
            self._once()

    def _once(self) -> None:
        try:
            with Session(self.engine) as session:
                beat(session, self.kind, self.detail)
                session.commit()
        except Exception:
            log.warning("heartbeat_failed", kind=self.kind, exc_info=True)
