"""`integra demo`: an EU hub and four national nodes on this machine (see node.demo)."""

from pathlib import Path
from typing import Annotated

import typer

from node.console import fail


def demo_command(
    base_port: Annotated[
        int,
        typer.Option(
            min=1, max=65531, help="The hub's port; the FR, PT, BG and GR nodes take the next four."
        ),
    ] = 8000,
    dir: Annotated[
        Path,
        typer.Option("--dir", help="Where each member's database, keys, password and log are."),
    ] = Path(".integra-demo"),
) -> None:
    """Start an EU hub and the FR, PT, BG and GR nodes on 127.0.0.1, each with its own sample
    data, sync the hub once and print where to look. Safe to re-run on the same --dir: keys,
    enrolments and passwords are kept and the sample loads again as no-ops. Ctrl-C stops all."""
    from node import demo

    try:
        code = demo.run(base_port, dir)
    except demo.DemoError as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code)
