"""What `/readyz` checks: each part the node needs to do its work, named with its state.

The database and its schema; with a broker, the broker and a live worker that consumes it with
the node's settings; the search backend; the signing key when the node federates; outbox work
that failed every attempt; on a hub, peers failing for longer than their interval. A check that
does not apply to this node is `off` and counts for nothing.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from federation.feed import FederationNotConfigured, active_key
from federation.models import PEER_LISTED, Peer, PeerSync
from node import migrations
from node.core import heartbeat, outbox
from node.core.db import read_only, utcnow
from node.core.settings import Role, Settings
from practices.search.port import SearchQuery

# off: the check does not apply to this node; unknown: it could not run (no database).
State = Literal["ok", "failed", "off", "unknown"]
# A check that waits on another server (the broker, Meilisearch) gives up after this.
TIMEOUT = 5.0


class CheckState(BaseModel):
    state: State
    detail: str


OK = CheckState(state="ok", detail="")


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, CheckState]


class NotReady(Readiness):
    error: str
    detail: str


@dataclass
class Failed(Exception):
    detail: str


Check = Callable[[AsyncSession, FastAPI], Awaitable[str]]


async def check_all(app: FastAPI) -> Readiness:
    """Every check in turn, in one reading session (never two at once on one connection)."""
    settings: Settings = app.state.settings
    checks: dict[str, CheckState] = {}
    async with app.state.session_factory() as session:
        try:
            await read_only(session)
        except Exception as exc:
            detail = f"database unreachable: {type(exc).__name__}"
            checks["database"] = CheckState(state="failed", detail=detail)
        for name, check in _checks(settings):
            if name in checks:
                continue
            if check is None:
                checks[name] = CheckState(state="off", detail=_why_off(name))
            elif name != "broker" and checks.get("database", OK).state == "failed":
                checks[name] = CheckState(state="unknown", detail="the database is not ready")
            else:
                checks[name] = await _run(check, session, app)
        await session.rollback()
    ready = all(c.state in ("ok", "off") for c in checks.values())
    return Readiness(status="ready" if ready else "not ready", checks=checks)


def failures(readiness: Readiness) -> str:
    return "; ".join(f"{n}: {c.detail}" for n, c in readiness.checks.items() if c.state == "failed")


async def _run(check: Check, session: AsyncSession, app: FastAPI) -> CheckState:
    try:
        # In a savepoint: a check that fails on PostgreSQL must not abort the others' reads.
        async with session.begin_nested():
            detail = await asyncio.wait_for(check(session, app), TIMEOUT)
        return CheckState(state="ok", detail=detail)
    except Failed as exc:
        return CheckState(state="failed", detail=exc.detail)
    except TimeoutError:
        return CheckState(state="failed", detail=f"no answer in {TIMEOUT:.0f} s")
    except Exception as exc:
        return CheckState(state="failed", detail=f"{type(exc).__name__}: {exc}"[:500])


def _checks(settings: Settings) -> list[tuple[str, Check | None]]:
    brokered = bool(settings.broker_url)
    return [
        ("database", _database),
        ("broker", _broker if brokered else None),
        ("worker", _worker if brokered else None),
        ("search", _search),
        ("signing_key", _signing_key if settings.country else None),
        ("outbox", _outbox),
        ("peers", _peers if settings.role is Role.hub else None),
    ]


def _why_off(name: str) -> str:
    return {
        "broker": "no broker configured: jobs run in the server's process",
        "worker": "no broker configured: jobs run in the server's process",
        "signing_key": "the node does not federate (no INTEGRA_COUNTRY)",
        "peers": "not a hub",
    }[name]


async def _database(session: AsyncSession, _app: FastAPI) -> str:
    try:
        conn = await session.connection()
        await conn.execute(text("SELECT 1"))
        current = await conn.run_sync(migrations.current_revision)
    except Exception as exc:
        raise Failed(f"database unreachable: {type(exc).__name__}") from None
    head = migrations.head_revision()
    if current != head:
        raise Failed(f"schema at {current}, code expects {head}")
    return f"schema at {head}"


async def _broker(_session: AsyncSession, app: FastAPI) -> str:
    url: str = app.state.settings.broker_url
    try:
        await asyncio.to_thread(_connect, url)
    except Exception as exc:
        raise Failed(f"broker unreachable: {type(exc).__name__}: {exc}"[:500]) from None
    return "broker answers"


def _connect(url: str) -> None:
    from kombu.connection import Connection

    with Connection(url, connect_timeout=3) as conn:  # type: ignore[no-untyped-call]
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)


async def _worker(session: AsyncSession, app: FastAPI) -> str:
    settings: Settings = app.state.settings
    workers = await session.run_sync(heartbeat.live, heartbeat.WORKER)
    if not workers:
        raise Failed(
            f"no Celery worker has sent a heartbeat in {heartbeat.LIVE.total_seconds():.0f} s: "
            "start one (`celery -A node.worker:celery worker`); until then no job runs"
        )
    here = heartbeat.fingerprint(settings)
    broker = heartbeat.digest(settings.broker_url or "")
    wrong: list[str] = []
    for worker in workers:
        there = worker.detail.get("settings", {})
        said = heartbeat.differences(here, there, where="on the worker")
        if worker.detail.get("broker") != broker:
            said.append("its broker is not this node's")
        if not said:
            return f"{len(workers)} worker(s) alive, the latest {worker.id}"
        wrong.append(f"{worker.id}: {', '.join(said)}")
    raise Failed("no worker runs with this node's settings: " + "; ".join(wrong))


async def _search(session: AsyncSession, app: FastAPI) -> str:
    backend = app.state.search
    await backend.search(session, SearchQuery(limit=1))
    return f"{backend.name} answers"


async def _signing_key(session: AsyncSession, app: FastAPI) -> str:
    settings: Settings = app.state.settings

    def load(sync: Session) -> str:
        return active_key(sync, settings).key_id

    try:
        key_id = await session.run_sync(load)
    except FileNotFoundError as exc:
        raise Failed(f"the signing key file is missing: {exc.filename}") from None
    except FederationNotConfigured as exc:
        raise Failed(str(exc)) from None
    except Exception as exc:
        raise Failed(f"the signing key cannot be used: {type(exc).__name__}: {exc}") from None
    return f"signs with {key_id}"


async def _outbox(session: AsyncSession, _app: FastAPI) -> str:
    failed = await outbox.failed_count(session)
    if failed:
        raise Failed(
            f"{failed} job(s) failed every attempt: see `integra feed status`, "
            "then `integra jobs retry`"
        )
    return "no failed jobs"


async def _peers(session: AsyncSession, app: FastAPI) -> str:
    interval: timedelta = app.state.settings.hub_sync_interval
    rows = (
        await session.execute(
            select(Peer, PeerSync)
            .outerjoin(PeerSync, PeerSync.peer_id == Peer.id)
            .where(Peer.active, Peer.kind != PEER_LISTED)
            .order_by(Peer.origin)
        )
    ).all()
    since = utcnow() - interval
    failing = [
        f"{peer.origin} ({state.failures} failures: {(state.last_error or '')[:120]})"
        for peer, state in rows
        if state is not None
        and state.failures
        and (state.last_success_at or peer.enrolled_at) < since
    ]
    if failing:
        raise Failed(
            f"failing for longer than {interval.total_seconds():.0f} s: " + "; ".join(failing)
        )
    return f"{len(rows)} peer(s), none failing for longer than their interval"
