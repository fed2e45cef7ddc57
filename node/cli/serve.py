"""`integra serve` and `integra db`: migrate the database, and start the node's web API."""

import os
import shutil
import signal
import socket
import sys
import tempfile
from typing import TYPE_CHECKING, Annotated

import typer

from node.console import fail, migrate, out
from node.core.settings import PLACEHOLDER_SECRET, Role, Settings, get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

db_app = typer.Typer(help="The node's database.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration. Safe to run again: an up-to-date database is left as is."""
    from node import migrations

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
    import structlog
    import uvicorn

    from node.cli.wire import JoinedHttpProtocol

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    check_port(host, port)  # before migrating: a taken port is said at once, nothing changed
    if settings.secret_key == PLACEHOLDER_SECRET:  # a log line: serve's stderr is its log
        structlog.get_logger().warning(
            "placeholder_secret",
            detail="INTEGRA_SECRET_KEY is the placeholder: tokens are keyed with a value anyone "
            "can read (run `integra config init`, or set it)",
        )
    migrate(settings.sqlalchemy_url)
    if sample_data and settings.role is Role.hub:
        out.print("a hub holds no sample data of its own: it pulls the nodes' records")
    elif sample_data:
        from node.sample import load_sample

        load_sample(settings.country)
    url = f"http://{host}:{port}"
    processes = workers or settings.api_workers
    out.print(f"Integra Exchange node ready at [bold]{url}[/bold]  (API docs: {url}/docs)")
    # Logs are the app's own JSON lines (its access log included), not uvicorn's.
    quiet = {"log_config": None, "access_log": False, "log_level": "warning"}
    if processes == 1:
        from node.app import create_app  # with more, each worker builds its own: not this process

        count_before_writes()

        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            http=JoinedHttpProtocol,
            **quiet,  # type: ignore[arg-type]
        )
        return
    # Each worker builds its own app (engine, pools, search cache) from the same settings, and
    # counts its requests into files that the one answering a scrape sums.
    os.environ[PARENT_ENV] = str(os.getpid())
    counts = None
    if not os.environ.get(MULTIPROCESS_ENV):
        counts = tempfile.mkdtemp(prefix="integra-metrics-")
        os.environ[MULTIPROCESS_ENV] = counts
    try:
        config = uvicorn.Config(
            f"{__name__}:worker_app",
            factory=True,
            host=host,
            port=port,
            workers=processes,
            http=JoinedHttpProtocol,
            # A worker busy loading its search cache still answers; only a hung one is replaced.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK,
            **quiet,  # type: ignore[arg-type]
        )
        from node.cli.workers import serve_workers

        serve_workers(config)
    finally:
        if counts is not None:
            shutil.rmtree(counts, ignore_errors=True)


def check_port(host: str, port: int) -> None:
    """Fail, saying so, when ``host:port`` cannot be listened on (another server holds it)."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            probe.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise fail(
            f"cannot listen on {host}:{port}: {reason} (another server may hold it: stop it, "
            "or choose another with --port or INTEGRA_PORT). Nothing was changed."
        ) from None


def keep_private(settings: Settings) -> None:
    """What this process writes is its owner's only (umask 077: the database, exports, keys,
    backups), and the data directory, an existing SQLite database and the keys directory are
    made so too (an older version left them readable by others)."""
    os.umask(0o077)
    data = settings.data_dir
    paths = [(data, 0o700), (settings.keys_path, 0o700)]
    paths += [(data / name, 0o600) for name in ("node.db", "node.db-wal", "node.db-shm")]
    for path, mode in paths:
        try:
            if path.exists() and path.stat().st_uid == os.getuid():
                os.chmod(path, mode)
        except OSError:  # not ours to change: left as it is
            continue


PARENT_ENV = "INTEGRA_SERVE_PARENT"
# prometheus_client's multiprocess mode: each worker counts into files in this directory.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds a worker may take to answer the server's liveness ping before it is replaced.
WORKER_HEALTHCHECK = 60


def worker_app() -> "FastAPI":
    """One worker's app, in a process the server spawned: it ends with the server, even one
    killed with SIGKILL, rather than serve on alone."""
    from node.app import create_app

    _die_with_parent(int(os.environ.get(PARENT_ENV, "0")))
    count_before_writes()
    return create_app(get_settings())


def count_before_writes() -> None:
    """The answers already given are counted before the next answer leaves (`node.metrics`)."""
    from node.cli.wire import BEFORE_WRITES
    from node.metrics import held_counts

    if held_counts.flush not in BEFORE_WRITES:
        BEFORE_WRITES.append(held_counts.flush)


def _die_with_parent(parent: int) -> None:
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if parent and os.getppid() != parent:  # gone before the signal was asked for
        os._exit(1)
