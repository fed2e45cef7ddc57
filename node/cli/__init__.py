"""The `integra` command: thin Typer commands over the services, one module per group.

Commands and groups, by module: serve (serve, db), config, users (user, token), registry, practices
(practices, study-visits, search), keys, feed, jobs, privacy, hub (hub, mirror), demo, verify,
backup (backup, restore). What they share is in `files` (import and export) and `node.console`
(output, errors, one transaction per step). A group's module is imported only when it runs
(`lazy.COMMANDS` lists them): each command is a process of its own.
"""

from typing import Annotated

import typer

from node.cli import config, serve
from node.cli.lazy import LazyGroup
from node.console import err
from node.core.settings import ConfigFileError, get_settings

app = typer.Typer(
    cls=LazyGroup,
    help="Integra Exchange: a national node of the federated registry.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # a traceback must not print record text or secrets
)


def _print_version(given: bool) -> None:
    if given:  # as `node.api.package_version` says it, without importing the API
        from importlib.metadata import PackageNotFoundError, version

        try:
            said = version("integra-exchange")
        except PackageNotFoundError:  # run from a source tree that was never installed
            said = "unknown"
        typer.echo(f"integra {said}")
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

    from node.core import logs

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


def main() -> None:  # pragma: no cover - console entry point
    app()
