"""The operator's console: what the `integra` commands, the demo and the sample loader share.

Output and errors, one transaction per step (on a migrated database), the operator as the
audited actor, and one sync round in this process. It sits beside `node/cli/`, not in it, so
that `node.demo` and `node.sample`, which the commands import, never import the commands.
"""

import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console

from node.core.settings import Settings, get_settings

# Each `integra` command is a process of its own: what only some commands need (the database
# layer, the services, alembic) is imported where it is used, not by every command.
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from federation.sync import Round
    from node.core.auth import Principal

T = TypeVar("T")

err = Console(stderr=True)
out = Console()


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


TOKEN_ENV = "INTEGRA_TOKEN"
TOKEN_HELP = (
    "Read an administrator's API token from standard input (else from INTEGRA_TOKEN); "
    "a token is never a command-line argument: shell history and the process list keep it."
)


def given_token(from_stdin: bool, argument: str | None, purpose: str) -> str:
    """The API token a command needs for ``purpose``: from standard input or INTEGRA_TOKEN.

    ``argument`` is what an old ``--token VALUE`` carried: refused with the way to do it, as
    a token on the command line ends up in shell history and in every user's process list.
    """
    if argument is not None:
        raise fail(
            "a token is never a command-line argument (shell history, the process list): "
            f"pipe it with --token-stdin or set {TOKEN_ENV}"
        )
    token = sys.stdin.readline().strip() if from_stdin else os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise fail(
            f"{purpose} needs an administrator's API token: pipe it with --token-stdin "
            f"or set {TOKEN_ENV}"
        )
    return token


@contextmanager
def refusals_fail() -> Iterator[None]:
    """A service's refusal (an AppError) ends the command with its message, as `fail` does."""
    from node.core.errors import AppError

    try:
        yield
    except AppError as exc:
        raise fail(exc.detail) from None


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (`migrations.upgrade`: one already
    there is only looked at)."""
    from node import migrations

    migrations.upgrade(url)


def run_in_session(
    work: "Callable[[AsyncSession], Awaitable[T]]", settings: Settings | None = None
) -> T:
    """Run ``work`` in one transaction against the configured database (migrated first)."""
    from node.core.db import create_engine, session_factory

    settings = settings or get_settings()
    migrate(settings.sqlalchemy_url)

    async def _run() -> T:
        from node.core import outbox

        engine = create_engine(settings.sqlalchemy_url, pooled=False)
        try:
            async with session_factory(engine)() as session:
                try:
                    result = await work(session)
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise
                if session.info.get("outbox"):  # else `after_commit` has nothing to do
                    # Every domain's handlers, as the server has them: a message done by some
                    # of them only (the search's, not the feed's) would be marked done.
                    import node.worker  # noqa: F401
                    from practices.search import make_backend

                    await outbox.after_commit(
                        session,
                        settings,
                        outbox.JobContext(search=make_backend(settings), settings=settings),
                    )
                return result
        finally:
            await engine.dispose()

    return asyncio.run(_run())


def run_or_fail(
    work: "Callable[[AsyncSession], Awaitable[T]]", settings: Settings | None = None
) -> T:
    """`run_in_session`, where a service's refusal rolls back and ends the command."""
    with refusals_fail():
        return run_in_session(work, settings)


def console_actor() -> str:
    return f"cli:{getpass.getuser()}"


def operator() -> "Principal":
    """Whoever runs the command at the node's console: an admin, audited by login name."""
    from node.core.auth import system_principal

    return system_principal(console_actor())


def sync_round(settings: Settings) -> dict[str, "Round | str"]:
    """One round in this process: what each due peer gave, or why it failed."""
    from sqlalchemy.orm import Session

    from federation.sync import run_round
    from node.core.db import create_sync_engine
    from practices.search import make_backend

    migrate(settings.sqlalchemy_url)
    engine = create_sync_engine(settings.sqlalchemy_url)
    try:
        return run_round(
            lambda: Session(engine),
            interval=settings.hub_sync_interval,
            search=make_backend(settings),
            settings=settings,
        )
    finally:
        engine.dispose()
