"""The `integra` command: thin Typer commands over the services, one module per group.

Commands and groups, by module: serve (serve, db), config, users (user, token), registry, practices
(practices, study-visits, search), keys, feed, jobs, privacy, hub (hub, mirror), demo, verify,
backup (backup, restore). What they share is in `files` (import and export) and `node.console`
(output, errors, one transaction per step).
"""

from typing import Annotated

import typer

from node.cli import (
    backup,
    config,
    demo,
    feed,
    hub,
    jobs,
    keys,
    needs,
    practices,
    privacy,
    registry,
    serve,
    users,
    verify,
)
from node.console import err
from node.core import logs
from node.core.settings import ConfigFileError, get_settings

app = typer.Typer(
    help="Integra Exchange: a national node of the federated registry.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # a traceback must not print record text or secrets
)


def _print_version(given: bool) -> None:
    if given:
        from node.api import package_version

        typer.echo(f"integra {package_version()}")
        raise typer.Exit()


@app.callback()
def _settings_first(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Read the settings before any command, so that a bad one is named, not a traceback; and
    stop a command that would write as another node would (`config.refuse_if_node_differs`)."""
    from pydantic import ValidationError

    try:
        settings = get_settings()
    except ValidationError as exc:
        for line in config.explain(exc):
            err.print(line, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except ConfigFileError as exc:
        err.print(f"bad configuration file: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    logs.configure(settings.log_level)
    serve.keep_private(settings)
    if ctx.invoked_subcommand not in config.UNGUARDED and not ctx.resilient_parsing:
        config.refuse_if_node_differs(settings, ctx.invoked_subcommand)


app.add_typer(serve.db_app, name="db")
app.add_typer(config.config_app, name="config")
app.add_typer(users.user_app, name="user")
app.add_typer(users.token_app, name="token")
app.add_typer(registry.registry_app, name="registry")
app.command()(serve.serve)
app.add_typer(practices.practices_app, name="practices")
app.add_typer(practices.visits_app, name="study-visits")
app.add_typer(practices.search_app, name="search")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(feed.feed_app, name="feed")
app.add_typer(jobs.jobs_app, name="jobs")
app.add_typer(privacy.privacy_app, name="privacy")
app.add_typer(needs.needs_app, name="needs")
app.add_typer(hub.hub_app, name="hub")
app.add_typer(hub.mirror_app, name="mirror")
app.command("demo")(demo.demo_command)
app.command()(verify.verify)
app.command("backup")(backup.backup_command)
app.command("restore")(backup.restore_command)


def main() -> None:  # pragma: no cover - console entry point
    app()
