"""A sync round: every due peer pulled, each in its own transactions (a failure is recorded on
that peer, with backoff, and the others go on), the largest backlogs first and side by side in
helper processes; then the search index catches up with what the round changed."""

import multiprocessing
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from federation.canonical import CanonicalError
from federation.models import PeerSync
from federation.pool import catch_up_index
from federation.sync.client import SyncError, fetch_json, job_deadline
from federation.sync.helpers import in_processes
from federation.sync.peer import Job, Round, due_peers, sync_under_lease
from node.core.db import READ_ONLY
from node.core.settings import Settings

# A helper process costs about half a second to start (imports): worth it only for a peer with
# at least this many entries waiting.
PARALLEL_BACKLOG = 2000
PLAN_TIMEOUT = 10.0  # seconds to read every due peer's checkpoint for the plan


def run_round(
    sessions: Callable[[], Session],
    *,
    interval: timedelta,
    timeout: float = 30.0,
    search: Any = None,
    settings: Settings | None = None,
    index: bool = True,
    workers: int | None = None,
) -> dict[str, Round | str]:
    """Sync every due peer, each in its own transactions: a failure is recorded on that peer
    (with backoff) and the others go on. Then, with `search` and `index`, the search index
    catches up with what the round (or an interrupted earlier one) changed. Returns what
    happened per origin.

    Peers with a large backlog are synced side by side in up to `workers` processes (by
    default `settings.hub_sync_workers`, else one): this one and helpers started for the round,
    which stop with it (and with this process, should it be killed)."""
    outcome: dict[str, Round | str] = {}
    with sessions() as session:
        engine = session.get_bind()
        due = [(p.id, p.origin, p.base_url) for p in due_peers(session)]
    assert isinstance(engine, Engine)
    if workers is None:
        workers = settings.sync_workers if settings else 1
    job = Job(engine.url.render_as_string(hide_password=False), interval, timeout, settings)
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0)) as client:
        order, helpers = plan(client, engine, due, workers)
        if helpers:
            outcome = in_processes(job, sessions, engine, client, order, helpers)
        else:
            for peer_id, origin in order:
                result = sync_under_lease(job, sessions, engine, client, peer_id)
                if result is not None:
                    outcome[origin] = result
    if search is not None and index:
        try:
            catch_up_index(sessions, search)
        except Exception:  # the import stands; what is pending is tried again next round
            structlog.get_logger().exception("search_index_catch_up_failed")
    return outcome


def plan(
    client: httpx.Client, engine: Engine, due: list[tuple[int, str, str]], workers: int
) -> tuple[list[tuple[int, str]], int]:
    """The order to sync the due peers in (largest backlog first) and how many helper
    processes to start. Backlogs come from each peer's checkpoint, unverified: they only
    schedule the work, `sync_peer` verifies everything it applies."""
    order = [(peer_id, origin) for peer_id, origin, _ in due]
    if workers < 2 or len(due) < 2 or not can_have_helpers(engine):
        return order, 0
    with engine.connect() as conn:
        reader = conn.execution_options(**{READ_ONLY: True})  # no write lock on SQLite
        cursors = {p: c for p, c in reader.execute(select(PeerSync.peer_id, PeerSync.cursor))}
    backlog: dict[int, int] = {}
    deadline = time.monotonic() + PLAN_TIMEOUT  # slow peers delay the round this much at most
    token = job_deadline.set(deadline)
    try:
        for peer_id, _origin, base_url in due:
            left = deadline - time.monotonic()
            if left <= 0:
                backlog[peer_id] = 0
                continue
            try:
                checkpoint = fetch_json(
                    client, f"{base_url}/federation/v1/checkpoint", timeout=min(left, 5.0)
                )
                size = checkpoint["checkpoint"]["size"]
                backlog[peer_id] = size - cursors.get(peer_id, 0) if isinstance(size, int) else 0
            except (SyncError, CanonicalError, httpx.HTTPError, ValueError, LookupError, TypeError):
                backlog[peer_id] = 0  # `sync_peer` will say what is wrong with this peer
    finally:
        job_deadline.reset(token)
    order.sort(key=lambda peer: -backlog[peer[0]])
    large = sum(1 for size in backlog.values() if size >= PARALLEL_BACKLOG)
    return order, max(0, min(workers, large) - 1)


def can_have_helpers(engine: Engine) -> bool:
    """Not in a daemonic process (a Celery prefork worker: its pool runs peers side by side),
    and not on an in-memory database another process cannot open."""
    database = engine.url.database
    in_memory = engine.dialect.name == "sqlite" and (not database or database == ":memory:")
    return not multiprocessing.current_process().daemon and not in_memory
