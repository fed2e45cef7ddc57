"""The `integra` command: thin Typer commands over the services, one module per group.

Commands and groups, by module: serve (serve, db), users (user, token), registry, practices
(practices, study-visits, search), keys, hub (hub, mirror), demo, verify. What they share is in
`files` (import and export) and `node.console` (output, errors, one transaction per step).
"""

import typer

from node.cli import demo, hub, keys, practices, registry, serve, users, verify
from node.console import err
from node.core.settings import get_settings

app = typer.Typer(
    help="Integra Exchange: a national node of the federated registry.", no_args_is_help=True
)


@app.callback()
def _settings_first() -> None:
    """Read the settings before any command, so that a bad one is named, not a traceback."""
    from pydantic import ValidationError

    try:
        get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper()
            where = f"{name if name == 'DATABASE_URL' else 'INTEGRA_' + name}: " if name else ""
            err.print(f"bad setting: {where}{error['msg']}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


app.add_typer(serve.db_app, name="db")
app.add_typer(users.user_app, name="user")
app.add_typer(users.token_app, name="token")
app.add_typer(registry.registry_app, name="registry")
app.command()(serve.serve)
app.add_typer(practices.practices_app, name="practices")
app.add_typer(practices.visits_app, name="study-visits")
app.add_typer(practices.search_app, name="search")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(hub.hub_app, name="hub")
app.add_typer(hub.mirror_app, name="mirror")
app.command("demo")(demo.demo_command)
app.command()(verify.verify)


def main() -> None:  # pragma: no cover - console entry point
    app()
