"""The application factory: one FastAPI app composed of the domains' routers."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial

import structlog
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncEngine

import node.worker  # noqa: F401 - registers every domain's tasks and outbox handlers
from federation.api import feed_router, hub_router, pool_router
from federation.api import router as federation_router
from node.api import health
from node.api import router as node_router
from node.core import errors, logs, outbox
from node.core.auth import get_principal
from node.core.db import create_engine, session_factory
from node.core.middleware import BodyLimit
from node.core.settings import Settings, get_settings
from practices.api import router as practices_router
from practices.search import make_backend
from practices.search.port import SearchQuery
from practices.study_visits.api import router as study_visits_router
from registry.api import router as registry_router

DESCRIPTION = """
A national node of Integra Exchange: the National Registration Database of agencies, NGOs,
contact points and cooperation protocols for the rehabilitation, disengagement and reintegration
of violent-extremist offenders. Contact points are personal data: only signed-in users see them,
and every read of one is audited.
"""


def create_app(settings: Settings | None = None, *, engine: AsyncEngine | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or create_engine(settings.sqlalchemy_url)
    logs.configure()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_warm_search(app))]
        if not settings.broker_url:
            tasks.append(asyncio.create_task(_sweep_outbox(app, settings.outbox_sweep_interval)))
            # A hub pulls the nodes it enrols; a node pulls the hub it mirrors, if any.
            tasks.append(asyncio.create_task(_pull_peers(settings)))
        yield
        for task in tasks:
            task.cancel()
        await engine.dispose()

    app = FastAPI(
        title="Integra Exchange node", description=DESCRIPTION, version="0.1.0", lifespan=lifespan
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory(engine)
    app.state.search = make_backend(settings)
    app.state.jobs = outbox.JobContext(search=app.state.search, settings=settings)
    app.middleware("http")(logs.refuse_control_characters)
    app.middleware("http")(logs.request_id_middleware)
    # Outermost: a body over the limit is refused before any other layer reads it.
    app.add_middleware(BodyLimit, max_bytes=settings.request_body_max)
    errors.install(app)
    app.include_router(health)
    # Every API route checks a token it is given, so a bad one is a 401 even where anonymous
    # reading is allowed (a client must not believe it is signed in when it is not).
    signed = [Depends(get_principal)]
    app.include_router(node_router, dependencies=signed)
    app.include_router(registry_router, dependencies=signed)
    app.include_router(practices_router, dependencies=signed)
    app.include_router(study_visits_router, dependencies=signed)
    app.include_router(federation_router, dependencies=signed)
    app.include_router(hub_router, dependencies=signed)
    app.include_router(pool_router, dependencies=signed)
    app.include_router(feed_router)
    app.get("/", include_in_schema=False, response_class=HTMLResponse)(_landing)
    return app


async def _warm_search(app: FastAPI) -> None:
    """Load the search facet cache at start, so the first visitor does not wait for it."""
    if app.state.search.name != "sql":
        return
    try:
        async with app.state.session_factory() as session:
            await app.state.search.search(session, SearchQuery(limit=1))
    except Exception:
        structlog.get_logger().exception("search_warm_up_failed")


async def _pull_peers(settings: Settings) -> None:
    """Embedded default: pull every due peer in a worker thread, round after round."""
    from sqlalchemy.orm import Session

    from federation.sync import run_round
    from node.core.db import create_sync_engine

    engine = create_sync_engine(settings.sqlalchemy_url)
    log = structlog.get_logger()
    try:
        while True:
            try:
                results = await asyncio.to_thread(
                    partial(
                        run_round,
                        lambda: Session(engine),
                        interval=settings.hub_sync_interval,
                        search=make_backend(settings),
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
    """Embedded default: do pending outbox work at start (what a crash left) and then often,
    in a worker thread (`outbox.drain_off_loop`)."""
    log = structlog.get_logger()
    while True:
        try:
            async with app.state.session_factory() as session:
                done = await outbox.drain_off_loop(session, app.state.jobs)
            if done:
                log.info("outbox_swept", messages=done)
        except Exception:
            log.exception("outbox_sweep_failed")
        await asyncio.sleep(interval.total_seconds())


async def _landing() -> str:
    return """<!doctype html><html lang="en"><meta charset="utf-8">
<title>Integra Exchange node</title>
<body style="font-family:system-ui;max-width:40rem;margin:3rem auto;line-height:1.5">
<h1>Integra Exchange — national node</h1>
<p>The National Registration Database of agencies, NGOs, contact points and cooperation
protocols.</p>
<ul>
<li><a href="/api/v1/organisations">Organisations</a>
 (e.g. <a href="/api/v1/organisations?country=GR">in Greece</a>)</li>
<li><a href="/api/v1/protocols">Cooperation protocols</a></li>
<li><a href="/api/v1/practices/search?q=reintegration">Search practices</a></li>
<li><a href="/docs">API documentation</a></li>
</ul></body></html>"""
