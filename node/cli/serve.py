"""`integra serve` and `integra db`: migrate the database, and start the node's web API."""

from typing import Annotated

import typer

from node import migrations
from node.console import out
from node.core.settings import Role, get_settings

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
    out.print(f"Integra Exchange node ready at [bold]{url}[/bold]  (API docs: {url}/docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
