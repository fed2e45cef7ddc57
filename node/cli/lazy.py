"""The `integra` command's groups, each imported only when it runs: one command imports its own
module (and the services that it uses), not every group's. `integra --help` lists them all with
their help, read from their modules' source rather than by importing them."""

import ast
import importlib
import inspect
from functools import cache
from pathlib import Path
from typing import Any

import typer
from typer._click import Command, Context, HelpFormatter  # typer's own click, which it subclasses
from typer.core import TyperCommand, TyperGroup

# name: (module in node.cli, the Typer sub-app or the command's function), in `--help`'s order.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve", "serve"),
    "demo": ("demo", "demo_command"),
    "verify": ("verify", "verify"),
    "backup": ("backup", "backup_command"),
    "restore": ("backup", "restore_command"),
    "db": ("serve", "db_app"),
    "config": ("config", "config_app"),
    "user": ("users", "user_app"),
    "token": ("users", "token_app"),
    "registry": ("registry", "registry_app"),
    "practices": ("practices", "practices_app"),
    "study-visits": ("practices", "visits_app"),
    "search": ("practices", "search_app"),
    "keys": ("keys", "keys_app"),
    "feed": ("feed", "feed_app"),
    "jobs": ("jobs", "jobs_app"),
    "privacy": ("privacy", "privacy_app"),
    "needs": ("needs", "needs_app"),
    "hub": ("hub", "hub_app"),
    "mirror": ("hub", "mirror_app"),
}


class LazyGroup(TyperGroup):
    """The root group: each entry of `COMMANDS` stands in by its name (for the order of the
    listing, and "did you mean" on a typo) until it is run or completed, when its module is
    imported and the real command takes its place; a listing shows a placeholder with its help."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands.update({name: TyperCommand(name=name) for name in COMMANDS})
        self._loaded: set[str] = set()
        self._listing = False

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name in COMMANDS and cmd_name not in self._loaded:
            if self._listing:
                return _placeholder(cmd_name)
            self.commands[cmd_name] = load(cmd_name)
            self._loaded.add(cmd_name)
        return self.commands.get(cmd_name)

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        self._listing = True  # the placeholders' help is what the listing shows
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def load(name: str) -> Command:
    """The command or group `name`, as `Typer.add_typer` or `Typer.command` would make it."""
    module_name, attribute = COMMANDS[name]
    found = getattr(importlib.import_module(f"node.cli.{module_name}"), attribute)
    holder = typer.Typer()
    if isinstance(found, typer.Typer):
        holder.add_typer(found, name=name)
    else:
        holder.command(name)(found)
    return typer.main.get_group(holder).commands[name]


@cache
def _placeholder(name: str) -> TyperCommand:
    return TyperCommand(name=name, help=help_of(name))


def help_of(name: str) -> str | None:
    """The help `name` shows in a listing: its sub-app's `help=`, or its function's docstring,
    read from the module's source; imported only when the source does not say it plainly."""
    module_name, attribute = COMMANDS[name]
    for node in ast.walk(_source(module_name)):
        if isinstance(node, ast.FunctionDef) and node.name == attribute:
            return ast.get_docstring(node)
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == attribute for t in node.targets)
            and isinstance(node.value, ast.Call)
        ):
            for keyword in node.value.keywords:
                if keyword.arg == "help" and isinstance(keyword.value, ast.Constant):
                    return str(keyword.value.value)
    found = load(name)  # a help computed at run time
    return inspect.cleandoc(found.help) if found.help else None


@cache
def _source(module_name: str) -> ast.Module:
    path = Path(__file__).with_name(f"{module_name}.py")
    return ast.parse(path.read_text(encoding="utf-8"))
