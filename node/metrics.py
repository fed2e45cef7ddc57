"""Prometheus metrics at `/metrics`: what each request cost, and the node's state.

Two kinds. Counted as they happen, in each server process: requests by method, route template
and status, their latency, and the search routes' latency. With several workers (`integra
serve --workers N`) every process writes its counts to files in `PROMETHEUS_MULTIPROC_DIR`
(prometheus_client's multiprocess mode, which `serve` sets up), and whichever worker answers a
scrape sums them all. Read from the database at scrape time, so any worker answers the same:
outbox work waiting and failed, records held by the personal-data gate, the feed's size, and
per peer (a hub's nodes, a mirrored hub) its lag, consecutive failures, refusals and staleness.

`/metrics` answers a loopback client, or any client with `Authorization: Bearer
<INTEGRA_METRICS_TOKEN>`; anyone else gets a 403 (through a proxy the client is the proxy's
caller, never loopback).
"""

import asyncio
import hmac
import os
import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from federation.models import PEER_LISTED, FeedState, GateHold, Peer, PeerSync, SyncRefusal
from node.core.db import read_only, utcnow
from node.core.middleware import Scope, route_of
from node.core.models import OutboxMessage
from node.core.outbox import is_failed, is_waiting

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The routes whose latency is a search's: the API's, the EU pool's, and the web's search page.
SEARCH_ROUTES = frozenset({"/api/v1/practices/search", "/api/v1/eu/search", "/"})
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

REQUESTS = Counter(
    "integra_http_requests",
    "Requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "integra_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by method and route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
SEARCH_LATENCY = Histogram(
    "integra_search_duration_seconds",
    "Time to answer a search (API, EU pool, web search page), by route template.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)

# Label children by key: `labels()` validates and hashes its arguments on every call.
_counted: dict[tuple[str, str, int], Any] = {}
_timed: dict[tuple[str, str], Any] = {}
_searched: dict[str, Any] = {}


class HeldCounts:
    """The answers of one turn of the event loop, counted at its end (`flush`), together.

    Counting an answer cost the server 6 µs of the 75 a kept search took, and with several
    workers 13 µs: each count, sum and bucket is then written to the worker's file (prometheus
    _client's multiprocess mode). Under load a worker answers many requests a turn, mostly on a
    few routes: they are written once for the turn, a histogram's observations bucketed here.

    The counts are written before any answer of the next turn leaves (`node.cli.wire` calls
    `flush` before its writes), before a scrape, and at the turn's end: a client that has read
    its answer, then scrapes any worker, finds the answer counted."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], int] = {}
        self._times: dict[tuple[str, str], list[float]] = {}
        self._searches: dict[str, list[float]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the flush waits on

    def add(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        self._counts[key] = self._counts.get(key, 0) + 1
        times = self._times.get(key[:2])
        if times is None:
            times = self._times[key[:2]] = []
        times.append(seconds)
        if route in SEARCH_ROUTES and status < 400:
            searches = self._searches.get(route)
            if searches is None:
                searches = self._searches[route] = []
            searches.append(seconds)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: counted at once
            self.flush()
            return
        if self._loop is loop:
            return
        if self._loop is not None:  # held for a loop that ended before its turn did (a test's)
            self.flush()
            return
        loop.call_soon(self.flush)
        self._loop = loop

    def flush(self) -> None:
        if not self._counts:
            return
        counts, times, searches = self._counts, self._times, self._searches
        self._counts, self._times, self._searches, self._loop = {}, {}, {}, None
        for key, count in counts.items():
            counter = _counted.get(key)
            if counter is None:
                counter = _counted[key] = REQUESTS.labels(key[0], key[1], str(key[2]))
            counter.inc(count)
        for pair, seconds in times.items():
            timed = _timed.get(pair)
            if timed is None:
                timed = _timed[pair] = LATENCY.labels(*pair)
            observe_all(timed, seconds)
        for route, seconds in searches.items():
            searched = _searched.get(route)
            if searched is None:
                searched = _searched[route] = SEARCH_LATENCY.labels(route)
            observe_all(searched, seconds)


def observe_all(histogram: Any, seconds: list[float]) -> None:
    """Observe each of ``seconds``: their sum and each bucket's count written once (a
    histogram's child keeps `_sum`, and `_buckets` not cumulated, beside `_upper_bounds`),
    or one by one where a child is made otherwise."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if len(seconds) == 1 or bounds is None or buckets is None or total is None:
        for value in seconds:
            histogram.observe(value)
        return
    counts = [0] * len(bounds)
    for value in seconds:
        counts[bisect_left(bounds, value)] += 1  # the first bound >= value, as `observe`
    total.inc(sum(seconds))
    for bucket, count in zip(buckets, counts, strict=True):
        if count:
            bucket.inc(count)


held_counts = HeldCounts()


def observe(scope: Scope, status: int, seconds: float) -> None:
    """Count one answer (the request middleware calls this after every HTTP request); it is
    written with the turn's others (`HeldCounts`)."""
    held_counts.add(scope.get("method", "?"), route_of(scope), status, seconds)


def counted_registry() -> CollectorRegistry:
    """The counted metrics: this process's, or every worker's summed from their files."""
    if os.environ.get(MULTIPROCESS_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    from prometheus_client import REGISTRY

    return REGISTRY


class _State(Collector):
    """Gauges already read from the database."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self.families


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


async def state_families(session: AsyncSession) -> list[GaugeMetricFamily]:
    """The node's state as gauges, read in one session."""
    count = func.count()
    waiting = await session.scalar(select(count).select_from(OutboxMessage).where(is_waiting()))
    failed = await session.scalar(select(count).select_from(OutboxMessage).where(is_failed()))
    oldest = await session.scalar(select(func.min(OutboxMessage.created_at)).where(is_waiting()))
    held = await session.scalar(
        select(count).select_from(GateHold).where(GateHold.status == "held")
    )
    feed = await session.scalar(select(FeedState.size).where(FeedState.id == 1))
    now = utcnow()
    families = [
        _gauge("integra_outbox_waiting", "Outbox jobs not done yet.", waiting or 0),
        _gauge("integra_outbox_failed", "Outbox jobs that failed every attempt.", failed or 0),
        _gauge(
            "integra_outbox_oldest_waiting_seconds",
            "Age of the oldest outbox job not done yet (0: none).",
            (now - oldest).total_seconds() if oldest else 0,
        ),
        _gauge("integra_held_records", "Records the personal-data gate holds.", held or 0),
        _gauge("integra_feed_size", "Entries in this node's signed feed.", feed or 0),
    ]
    return families + await _peer_families(session, now)


async def _peer_families(session: AsyncSession, now: Any) -> list[GaugeMetricFamily]:
    names = {
        "lag": ("integra_peer_lag_entries", "Entries of a peer's last checkpoint not pulled yet."),
        "age": (
            "integra_peer_last_success_seconds",
            "Seconds since the last successful pull from a peer (-1: never).",
        ),
        "failures": ("integra_peer_failures", "Consecutive failed pulls from a peer."),
        "stale": ("integra_peer_stale", "1 when a peer's signed checkpoint is stale."),
        "refusals": ("integra_peer_refusals", "Entries of a peer refused, with their reason."),
    }
    families = {
        key: GaugeMetricFamily(name, doc, labels=["origin"]) for key, (name, doc) in names.items()
    }
    refusals = dict(
        (
            await session.execute(
                select(SyncRefusal.peer_id, func.count()).group_by(SyncRefusal.peer_id)
            )
        ).all()
    )
    rows = (
        await session.execute(
            select(Peer, PeerSync)
            .outerjoin(PeerSync, PeerSync.peer_id == Peer.id)
            .where(Peer.active, Peer.kind != PEER_LISTED)
            .order_by(Peer.origin)
        )
    ).all()
    for peer, state in rows:
        origin = [peer.origin]
        if state is None:
            families["lag"].add_metric(origin, 0)
            families["age"].add_metric(origin, -1)
            families["failures"].add_metric(origin, 0)
            families["stale"].add_metric(origin, 0)
        else:
            families["lag"].add_metric(origin, max(0, state.checkpoint_size - state.cursor))
            success = state.last_success_at
            families["age"].add_metric(origin, (now - success).total_seconds() if success else -1)
            families["failures"].add_metric(origin, state.failures)
            families["stale"].add_metric(origin, 1 if state.stale_since else 0)
        families["refusals"].add_metric(origin, refusals.get(peer.id, 0))
    return list(families.values())


router = APIRouter(include_in_schema=False)


def allowed(request: Request) -> bool:
    """A loopback client, or one with the metrics token."""
    token: str | None = request.app.state.settings.metrics_token
    given = request.headers.get("authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    return request.client is not None and request.client.host in LOOPBACK


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """The metrics in Prometheus's text format (see the module's docstring for who may read)."""
    if not allowed(request):
        body = {
            "error": "Forbidden",
            "detail": "metrics are served to loopback clients, or with INTEGRA_METRICS_TOKEN",
        }
        return JSONResponse(body, status_code=403)
    began = time.perf_counter()
    async with request.app.state.session_factory() as session:
        await read_only(session)
        families = await state_families(session)
        await session.rollback()
    elapsed = time.perf_counter() - began
    families.append(_gauge("integra_metrics_state_seconds", "Time to read the state.", elapsed))
    state = CollectorRegistry()
    state.register(_State(families))
    held_counts.flush()  # this worker's counts of this turn
    text = generate_latest(counted_registry()) + generate_latest(state)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
