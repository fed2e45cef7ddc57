"""The helper processes and threads of a round: peers with a large backlog are synced side by
side in processes, each taking the next peer when done with one, and every other peer in a
thread of its own, so that a slow peer holds nobody else's sync. Helpers are forked when that
is safe (a single-threaded process with no pooled connection) and spawned otherwise; each dies
with the process that started it, and a helper that dies leaves its peer failed, not
"running"."""

import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.context import ForkContext, SpawnContext
from typing import Any

import httpx
import structlog
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from federation.models import Peer
from federation.sync.peer import Job, Round, record_failure, sync_under_lease
from node.core.db import create_sync_engine

PEER_THREADS = 16  # peers a process syncs at once, beside its share of the large backlogs


def _work(
    job: Job,
    sessions: Callable[[], Session],
    engine: Engine,
    client: httpx.Client,
    tasks: Any,
    results: Any,
) -> None:
    """Take peers from `tasks` until a None, and say what became of each on `results`."""
    while (task := tasks.get()) is not None:
        _sync(job, sessions, engine, client, task, results)


def _sync(
    job: Job,
    sessions: Callable[[], Session],
    engine: Engine,
    client: httpx.Client,
    task: tuple[int, str],
    results: Any,
) -> None:
    """Sync one peer, and say on `results` that it began and what became of it."""
    peer_id, origin = task
    results.put(("begin", peer_id, origin, None))
    try:
        result = sync_under_lease(job, sessions, engine, client, peer_id)
    except Exception as exc:  # the database, say: the other peers go on
        structlog.get_logger().exception("peer_sync_failed", origin=origin)
        result = f"{type(exc).__name__}: {exc}"
    results.put(("end", peer_id, origin, result))


def alongside(
    job: Job,
    sessions: Callable[[], Session],
    engine: Engine,
    client: httpx.Client,
    beside: Sequence[tuple[int, str]],
    results: Any,
    share: Callable[[], None],
) -> None:
    """`share` (this process's share of the large backlogs, one peer after another) and each
    peer of `beside` in a thread of its own (up to PEER_THREADS at once): a slow peer holds
    only its own thread, whatever its requests wait for. What becomes of each peer of `beside`
    is said on `results`."""
    if not beside:
        share()
        return
    threads = min(len(beside), PEER_THREADS) + 1
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="integra-sync") as pool:
        futures = [pool.submit(share)]
        futures += [
            pool.submit(_sync, job, sessions, engine, client, task, results) for task in beside
        ]
    for future in futures:
        future.result()


def in_threads(
    job: Job,
    sessions: Callable[[], Session],
    engine: Engine,
    client: httpx.Client,
    queued: Sequence[tuple[int, str]],
    beside: Sequence[tuple[int, str]],
) -> dict[str, Round | str]:
    """Sync `queued` one after another and each peer of `beside` in a thread of its own, all
    in this process."""
    mine = LocalMessages()

    def share() -> None:
        for task in queued:
            _sync(job, sessions, engine, client, task, mine)

    alongside(job, sessions, engine, client, beside, mine, share)
    return _outcomes(mine)[0]


def _helper(job: Job, tasks: Any, results: Any, parent: int) -> None:
    """A helper process of a round: the same work as the process that started it."""
    _die_with(parent)
    # A forked helper has its parent's handlers (the demo's only set a flag): the defaults
    # instead, so that Ctrl-C and SIGTERM stop it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    engine = create_sync_engine(job.database_url)
    try:
        with httpx.Client(timeout=httpx.Timeout(job.timeout, connect=5.0)) as client:
            _work(job, lambda: Session(engine), engine, client, tasks, results)
    finally:
        engine.dispose()
        results.put(("done", os.getpid(), "", None))


def _die_with(parent: int) -> None:
    """Be killed when the process that started this one dies, even by kill -9: a helper must
    not go on importing behind the back of a restarted hub."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (AttributeError, OSError):  # no prctl in this C library
            structlog.get_logger().warning("sync_helper_may_outlive_its_parent")
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


PR_SET_PDEATHSIG = 1


def in_processes(
    job: Job,
    sessions: Callable[[], Session],
    engine: Engine,
    client: httpx.Client,
    order: list[tuple[int, str]],
    helpers: int,
    beside: Sequence[tuple[int, str]] = (),
) -> dict[str, Round | str]:
    """Sync `order` in this process and `helpers` more, each taking the next peer when done
    with one, and meanwhile each peer of `beside` in a thread of its own in this process. A
    helper that dies leaves its peer failed (with backoff), not "running"."""
    context = start_context(engine)
    tasks, results = context.Queue(), context.Queue()
    started = []
    for n in range(helpers):
        process = context.Process(
            target=_helper, args=(job, tasks, results, os.getpid()), name=f"integra-sync-{n}"
        )
        try:
            process.start()
        except Exception:  # this process takes the peers the helper would have taken
            structlog.get_logger().exception("sync_helper_not_started")
            continue
        started.append(process)
    # Put once the helpers are started: the first put starts the queue's feeder thread, and a
    # helper is forked only from a process that runs one thread.
    for task in order:
        tasks.put(task)
    for _ in range(helpers + 1):
        tasks.put(None)
    mine = (
        LocalMessages()
    )  # what this process says stays here; only the helpers' goes through a pipe
    try:
        alongside(
            job,
            sessions,
            engine,
            client,
            beside,
            mine,
            lambda: _work(job, sessions, engine, client, tasks, mine),
        )
    finally:
        outcome, begun = _collect(results, started, mine)
        for channel in (tasks, results):  # their pipes and feeder threads, not left to the GC
            channel.close()
            channel.join_thread()
    codes = ", ".join(str(p.exitcode) for p in started)
    for peer_id, origin in begun.items():  # a helper died with this peer in hand
        error = f"the process syncing this peer stopped (exit codes {codes})"
        with sessions() as session:
            peer = session.get(Peer, peer_id)
            if peer is not None:
                record_failure(session, peer, error)
                session.commit()
        outcome[origin] = error
    return outcome


def start_context(engine: Engine) -> ForkContext | SpawnContext:
    if _start_method(engine) == "fork":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _start_method(engine: Engine) -> str:
    """How helpers start: forked when this process runs a single thread (`integra hub sync`)
    and keeps no database connection open between uses (a pooled one would be shared with the
    child): at once, with what this process has loaded (a spawned helper spends about a second
    importing it again, and the round waits for its slowest process). Spawned otherwise (the
    embedded server runs rounds from a thread): a forked child could inherit a lock another
    thread held, and wait on it for ever."""
    single = threading.active_count() == 1 and isinstance(engine.pool, NullPool)
    return "fork" if single and "fork" in multiprocessing.get_all_start_methods() else "spawn"


class LocalMessages(list[tuple[str, int, str, Any]]):
    """What a process says of its peers, kept in place (the round's own process)."""

    def put(self, message: tuple[str, int, str, Any]) -> None:
        self.append(message)


def _collect(
    results: Any, started: list[Any], mine: LocalMessages
) -> tuple[dict[str, Round | str], dict[int, str]]:
    """Read what the helpers say until each has said it is done or has stopped (read while
    waiting: a process does not end before what it said is read), then join them. Returns
    the outcomes, this process's included, and the peers begun but never finished."""
    messages: list[tuple[str, int, str, Any]] = list(mine)
    waiting = {process.pid: process for process in started}
    while waiting:
        stopped = [pid for pid, process in waiting.items() if process.exitcode is not None]
        try:
            messages.append(results.get(timeout=0.2))
        except queue.Empty:
            for pid in stopped:  # it stopped before this read, and all it wrote has been read
                waiting.pop(pid)
            continue
        kind, pid, _, _ = messages[-1]
        if kind == "done":
            waiting.pop(pid, None)
    for process in started:
        process.join()
    return _outcomes(messages)


def _outcomes(
    messages: list[tuple[str, int, str, Any]],
) -> tuple[dict[str, Round | str], dict[int, str]]:
    """What became of each peer, and the peers begun but never finished."""
    outcome: dict[str, Round | str] = {}
    begun: dict[int, str] = {}
    for kind, peer_id, origin, result in messages:
        if kind == "begin":
            begun[peer_id] = origin
        elif kind == "end":
            begun.pop(peer_id, None)
            if result is not None:
                outcome[origin] = result
    return outcome, begun
