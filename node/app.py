"""The application factory: one FastAPI app composed of the domains' routers."""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from datetime import timedelta
from functools import partial

import structlog
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import Match, Mount
from starlette.types import Scope

import node.worker  # noqa: F401 - registers every domain's tasks and outbox handlers
from federation.api import feed_router, hub_router, pool_router
from federation.api import router as federation_router
from node.api import Liveness, health, liveness_route, package_version
from node.api import router as node_router
from node.core import errors, heartbeat, logs, outbox
from node.core.answers import Answers, KeptRoutes
from node.core.auth import get_principal
from node.core.db import create_engine, read_only, session_factory
from node.core.locks import BACKGROUND_LEASE, INDEX_LEASE, lease
from node.core.middleware import BodyLimit, RequestContext
from node.core.settings import PLACEHOLDER_SECRET, Settings, get_settings
from node.metrics import observe
from node.metrics import router as metrics_router
from node.privacy.api import router as privacy_router
from node.web import create_web
from node.web.deps import SESSION_COOKIE
from practices.api import router as practices_router
from practices.search import make_backend
from practices.search.port import SearchBackend, SearchQuery
from practices.search_api import router as records_search_router
from practices.study_visits.api import router as study_visits_router
from registry.api import router as registry_router

# How often a worker without the background lease tries again to take it.
BACKGROUND_RETRY = 5.0
DESCRIPTION = """
A national node of Integra Exchange: the National Registration Database of agencies, NGOs,
contact points and cooperation protocols for the rehabilitation, disengagement and reintegration
of violent-extremist offenders. Contact points are personal data: only signed-in users see them,
and every read of one is audited.
"""


def create_app(settings: Settings | None = None, *, engine: AsyncEngine | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or create_engine(
        settings.sqlalchemy_url,
        pool_size=settings.database_pool_size,
        pool_overflow=settings.database_pool_overflow,
    )
    logs.configure(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        beating = heartbeat.Beating.of(heartbeat.SERVER, settings)  # read by the CLI's guard
        await asyncio.to_thread(beating.start)
        structlog.get_logger().info("server_process_started", pid=os.getpid())
        if settings.secret_key == PLACEHOLDER_SECRET:
            structlog.get_logger().warning(
                "placeholder_secret", detail="INTEGRA_SECRET_KEY is the placeholder: set a real one"
            )
        tasks = [asyncio.create_task(_warm_search(app))]
        if not settings.broker_url:
            tasks.append(asyncio.create_task(_background(app, settings)))
        yield
        for task in tasks:
            task.cancel()
        await asyncio.to_thread(beating.stop)
        await engine.dispose()

    app = FastAPI(
        title="Integra Exchange node",
        description=DESCRIPTION,
        version=package_version(),
        lifespan=lifespan,
        docs_url=None,  # the web sub-app serves /docs from the package's own Swagger UI files
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory(engine)
    app.state.search = make_backend(settings)
    app.state.answers = Answers()  # lists and searches kept until their tables change
    # Innermost: an anonymous reader's request for a kept answer is served before routing.
    app.add_middleware(KeptRoutes, state=app.state, session_cookie=SESSION_COOKIE)
    app.add_middleware(Liveness, route=liveness_route())  # the probe's constant answer
    app.state.jobs = outbox.JobContext(search=app.state.search, settings=settings)
    if settings.cors_origins:  # closed unless configured
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "X-Request-ID"],
            expose_headers=["ETag", "X-Request-ID", "Retry-After"],
        )
    # The request id, no control characters in URLs, surface headers, metrics, access log.
    app.add_middleware(
        RequestContext,
        observe=observe,
        access_log=settings.access_log and settings.log_level in ("debug", "info"),
        session_cookie=SESSION_COOKIE,
    )
    # Outermost: a body over the limit is refused before any other layer reads it.
    app.add_middleware(BodyLimit, max_bytes=settings.request_body_max)
    errors.install(app)
    logs.install(app)  # a database or broker out of reach: one log line and a 503
    app.include_router(health)
    app.include_router(metrics_router)
    # Every API route checks a token it is given, so a bad one is a 401 even where anonymous
    # reading is allowed (a client must not believe it is signed in when it is not).
    signed = [Depends(get_principal)]
    app.include_router(node_router, dependencies=signed)
    app.include_router(privacy_router, dependencies=signed)
    app.include_router(registry_router, dependencies=signed)
    app.include_router(practices_router, dependencies=signed)
    app.include_router(records_search_router, dependencies=signed)
    app.include_router(study_visits_router, dependencies=signed)
    app.include_router(federation_router, dependencies=signed)
    app.include_router(hub_router, dependencies=signed)
    app.include_router(pool_router, dependencies=signed)
    app.include_router(feed_router)
    # Last: the HTML interface answers every path the API does not.
    app.router.routes.append(Pages("/", app=create_web(app.state)))
    return app


class Pages(Mount):
    """The web interface's mount: every path but the API's and the feed's. A path under those
    that no route serves, or a method its route does not take, gets the API's own 404 or 405
    in its error shape, not a page."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and scope["path"].startswith(NOT_PAGES):
            return Match.NONE, {}
        return super().matches(scope)


NOT_PAGES = ("/api/", "/federation/")


async def _warm_search(app: FastAPI) -> None:
    """Load the search facet cache at start, so the first visitor does not wait for it."""
    try:
        await asyncio.to_thread(_reanalyse, app.state.settings, app.state.search)
    except Exception:
        structlog.get_logger().exception("search_reanalysis_failed")
    if app.state.search.name != "sql":
        return
    try:
        async with app.state.session_factory() as session:
            await read_only(session)  # no write lock held while the cache loads
            await app.state.search.search(session, SearchQuery(limit=1))
    except Exception:
        structlog.get_logger().exception("search_warm_up_failed")


def _reanalyse(settings: Settings, search: SearchBackend) -> None:
    """An index made with another analysis than this code's (`ANALYSIS_VERSION`; after an
    upgrade) is rebuilt at start, by one process: the practices, then the pool's records."""
    from sqlalchemy import update
    from sqlalchemy.orm import Session

    from federation.models import FederatedRecord
    from federation.pool import index_pending
    from node.core.db import create_sync_engine
    from practices.search.sql import analysis_current, mark_analysed
    from practices.tasks import reindex_all

    engine = create_sync_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            if analysis_current(session):
                return
        with lease(engine, INDEX_LEASE) as mine, Session(engine) as session:
            if not mine or analysis_current(session):
                return
            log = structlog.get_logger()
            log.info("search_reanalysis_started")
            count = reindex_all(session, outbox.JobContext(search=search, settings=settings))
            mark_analysed(session)
            session.execute(update(FederatedRecord).values(indexed=False))
            session.commit()
            pooled = index_pending(session, search)
            log.info("search_reanalysed", practices=count, pooled=pooled)
    finally:
        engine.dispose()


async def _background(app: FastAPI, settings: Settings) -> None:
    """Embedded default: the outbox sweep and the peers' rounds, in one process of the server
    however many workers it runs: the one holding the background lease (a lock that its
    process's end frees, so another worker takes over within `BACKGROUND_RETRY`)."""
    from node.core.db import create_sync_engine

    engine = create_sync_engine(settings.sqlalchemy_url)
    log = structlog.get_logger()
    try:
        while True:
            with ExitStack() as held:
                mine = await asyncio.to_thread(held.enter_context, lease(engine, BACKGROUND_LEASE))
                if mine:
                    log.info("background_started", pid=os.getpid())
                    # A hub pulls the nodes it enrols; a node pulls the hub it mirrors, if any.
                    await asyncio.gather(
                        _sweep_outbox(app, settings.outbox_sweep_interval), _pull_peers(settings)
                    )
            await asyncio.sleep(BACKGROUND_RETRY)
    finally:
        engine.dispose()


async def _pull_peers(settings: Settings) -> None:
    """Embedded default: pull every due peer in a worker thread, round after round."""
    from sqlalchemy.orm import Session

    from federation.sync import run_round
    from node.core.db import create_sync_engine

    engine = create_sync_engine(settings.sqlalchemy_url)
    search = make_backend(settings)  # one for every round
    log = structlog.get_logger()
    try:
        while True:
            try:
                results = await asyncio.to_thread(
                    partial(
                        run_round,
                        lambda: Session(engine),
                        interval=settings.hub_sync_interval,
                        search=search,
                        settings=settings,
                    )
                )
                for origin, result in results.items():
                    log.info("peer_pulled", origin=origin, result=str(result))
            except Exception:
                log.exception("sync_round_failed")
            await asyncio.sleep(min(10.0, settings.hub_sync_interval.total_seconds()))
    finally:
        engine.dispose()


async def _sweep_outbox(app: FastAPI, interval: timedelta) -> None:
    """Embedded default: the periodic sweep (the domains' sweepers, such as the feed's
    reconciliation, then pending outbox work: what a crash left) at start and then often, in a
    worker thread (`outbox.drain_off_loop`)."""
    log = structlog.get_logger()
    while True:
        try:
            async with app.state.session_factory() as session:
                done = await outbox.drain_off_loop(session, app.state.jobs, work=outbox.sweep)
            if done:
                log.info("outbox_swept", messages=done)
        except Exception:
            log.exception("outbox_sweep_failed")
        await asyncio.sleep(interval.total_seconds())
