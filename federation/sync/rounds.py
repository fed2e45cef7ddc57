"""A sync round: every due peer pulled, each in its own transactions (a failure is recorded on
that peer, with backoff, and the others go on), the largest backlogs first and side by side in
helper processes, every other peer at the same time in a thread of its own (each request to a
peer within a deadline and a minimum rate: a slow peer delays nobody); then the search index
catches up with what the round changed."""

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from federation.canonical import CanonicalError
from federation.models import PeerSync
from federation.pool import catch_up_index
from federation.redaction import scrub
from federation.sync.client import Limits, SyncError, fetch_json
from federation.sync.helpers import PEER_THREADS, in_processes, in_threads
from federation.sync.peer import Job, Round, due_peers
from node.core.db import READ_ONLY
from node.core.settings import Settings

# A helper process costs about half a second to start (imports): worth it only for a peer with
# at least this many entries waiting.
PARALLEL_BACKLOG = 2000
# Seconds to read a due peer's checkpoint for the plan (side by side): the round starts at most
# this late because of a slow peer, which then counts as a small backlog.
PLAN_TIMEOUT = 3.0


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
    which stop with it (and with this process, should it be killed). Every other peer is
    synced meanwhile in a thread of its own in this process."""
    with sessions() as session:
        engine = session.get_bind()
        due = [(p.id, p.origin, p.base_url) for p in due_peers(session)]
    assert isinstance(engine, Engine)
    if workers is None:
        workers = settings.sync_workers if settings else 1
    outcome: dict[str, Round | str] = {}
    if due:  # no peer due (most rounds): no client built (its TLS context costs milliseconds)
        job = Job(engine.url.render_as_string(hide_password=False), interval, timeout, settings)
        with httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0)) as client:
            large, small, helpers = plan(client, engine, due, workers, Limits.of(settings))
            if helpers:
                outcome = in_processes(job, sessions, engine, client, large, helpers, beside=small)
            else:
                outcome = in_threads(job, sessions, engine, client, large, small)
    if search is not None and index:
        try:
            catch_up_index(sessions, search)
        except Exception:  # the import stands; what is pending is tried again next round
            structlog.get_logger().exception("search_index_catch_up_failed")
    if any(isinstance(r, Round) and r.redactions for r in outcome.values()):
        scrub(engine)  # after the index let go of what the redactions purged
    return outcome


Task = tuple[int, str]  # a peer's id and origin


def plan(
    client: httpx.Client,
    engine: Engine,
    due: list[tuple[int, str, str]],
    workers: int,
    limits: Limits,
) -> tuple[list[Task], list[Task], int]:
    """The peers with a large backlog, largest first (synced one after another by each
    process), the others (each synced in a thread of its own, beside them), and how many
    helper processes to start. Backlogs come from each peer's checkpoint, read side by side
    and unverified: they only schedule the work, `sync_peer` verifies everything it applies.
    A peer whose checkpoint does not come within PLAN_TIMEOUT counts as a small backlog."""
    order = [(peer_id, origin) for peer_id, origin, _ in due]
    if len(due) < 2 or not can_have_threads(engine):
        return order, [], 0
    with engine.connect() as conn:
        reader = conn.execution_options(**{READ_ONLY: True})  # no write lock on SQLite
        cursors = {p: c for p, c in reader.execute(select(PeerSync.peer_id, PeerSync.cursor))}
    quick = replace(limits, deadline=min(limits.deadline, PLAN_TIMEOUT))
    with ThreadPoolExecutor(max_workers=min(len(due), PEER_THREADS)) as pool:
        sizes = list(pool.map(lambda peer: checkpoint_size(client, peer[2], quick), due))
    backlog = {
        peer_id: size - cursors.get(peer_id, 0) if size is not None else 0
        for (peer_id, _, _), size in zip(due, sizes, strict=True)
    }
    large = sorted(
        (task for task in order if backlog[task[0]] >= PARALLEL_BACKLOG),
        key=lambda task: -backlog[task[0]],
    )
    small = [task for task in order if backlog[task[0]] < PARALLEL_BACKLOG]
    helpers = max(0, min(workers, len(large)) - 1) if can_have_helpers(engine) else 0
    return large, small, helpers


def checkpoint_size(client: httpx.Client, base_url: str, limits: Limits) -> int | None:
    """The size a peer's checkpoint says, unverified; None if it does not say."""
    try:
        checkpoint = fetch_json(client, f"{base_url}/federation/v1/checkpoint", limits=limits)
        size = checkpoint["checkpoint"]["size"]
    except (SyncError, CanonicalError, httpx.HTTPError, ValueError, LookupError, TypeError):
        return None  # `sync_peer` will say what is wrong with this peer
    return size if isinstance(size, int) else None


def can_have_threads(engine: Engine) -> bool:
    """Not on an in-memory database: each connection would open a database of its own."""
    database = engine.url.database
    return not (engine.dialect.name == "sqlite" and (not database or database == ":memory:"))


def can_have_helpers(engine: Engine) -> bool:
    """Not in a daemonic process (a Celery prefork worker: its pool runs peers side by side),
    and not on an in-memory database another process cannot open."""
    return not multiprocessing.current_process().daemon and can_have_threads(engine)
