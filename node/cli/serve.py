"""`integra serve` and `integra db`: migrate the database, and start the node's web API."""

import os
import signal
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from node import migrations
from node.console import out
from node.core.settings import Role, get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

db_app = typer.Typer(help="The node's database.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration. Safe to run again: an up-to-date database is left as is."""
    settings = get_settings()
    migrations.upgrade(settings.sqlalchemy_url)
    out.print(f"database at {migrations.head_revision()}")


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    sample_data: Annotated[
        bool,
        typer.Option(
            "--sample-data",
            help="Load the sample registry, practices and study visits from the INTEGRA "
            "report before starting: all of them, or only INTEGRA_COUNTRY's on a national "
            "node; none on a hub. Safe to repeat.",
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Processes answering requests (default: INTEGRA_WORKERS, or one per CPU core "
            "up to 4). Background work (the outbox sweep, a hub's rounds) runs in one of them.",
        ),
    ] = None,
) -> None:
    """Migrate the database and start the node's web API."""
    import uvicorn

    from node.app import create_app
    from node.sample import load_sample

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    migrations.upgrade(settings.sqlalchemy_url)
    if sample_data and settings.role is Role.hub:
        out.print("a hub holds no sample data of its own: it pulls the nodes' records")
    elif sample_data:
        load_sample(settings.country)
    url = f"http://{host}:{port}"
    processes = workers or settings.api_workers
    out.print(f"Integra Exchange node ready at [bold]{url}[/bold]  (API docs: {url}/docs)")
    if processes == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
        return
    # Each worker builds its own app (engine, pools, search cache) from the same settings.
    os.environ[PARENT_ENV] = str(os.getpid())
    uvicorn.run(
        f"{__name__}:worker_app",
        factory=True,
        host=host,
        port=port,
        workers=processes,
        # A worker busy loading its search cache still answers; only a hung one is replaced.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK,
        log_level="warning",
    )


PARENT_ENV = "INTEGRA_SERVE_PARENT"
# Seconds a worker may take to answer the server's liveness ping before it is replaced.
WORKER_HEALTHCHECK = 60


def worker_app() -> "FastAPI":
    """One worker's app, in a process the server spawned: it ends with the server, even one
    killed with SIGKILL, rather than serve on alone."""
    from node.app import create_app

    _die_with_parent(int(os.environ.get(PARENT_ENV, "0")))
    return create_app(get_settings())


def _die_with_parent(parent: int) -> None:
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if parent and os.getppid() != parent:  # gone before the signal was asked for
        os._exit(1)
