"""`integra feed`: is this node's signed feed in step with what it publishes? And bringing it
in step (`reconcile`), which the running node also does at start and on every sweep."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.orm import Session

from node.console import fail, out
from node.core.settings import Settings, get_settings

if TYPE_CHECKING:
    from federation.reconcile import FeedStatus, Outcome

feed_app = typer.Typer(
    help="This node's signed feed: what is not in it, and why.", no_args_is_help=True
)


@contextmanager
def sync_sessions(settings: Settings) -> Iterator[Callable[[], Session]]:
    """Synchronous sessions on the configured database (migrated first), as jobs use them."""
    from node import migrations
    from node.core.db import create_sync_engine

    migrations.upgrade(settings.sqlalchemy_url)
    engine = create_sync_engine(settings.sqlalchemy_url)
    try:
        yield lambda: Session(engine)
    finally:
        engine.dispose()


@contextmanager
def not_configured_fails() -> Iterator[None]:
    """No country, no key or an unreadable key ends the command with what to do."""
    from federation.feed import FederationNotConfigured

    try:
        yield
    except FederationNotConfigured as exc:
        raise fail(str(exc)) from None


def reconcile_feed(settings: Settings, *, everything: bool = False) -> "Outcome":
    """Bring the feed in step with what is published, batch after batch."""
    from federation.reconcile import reconcile_all

    with sync_sessions(settings) as sessions, not_configured_fails():
        return reconcile_all(sessions, settings, everything=everything)


def print_outcome(outcome: "Outcome") -> None:
    parts = [f"{outcome.appended} appended", f"{outcome.withdrawn} withdrawn"]
    if outcome.held:
        parts.append(f"{outcome.held} held for review (see `integra feed status`)")
    if outcome.unchanged:
        parts.append(f"{outcome.unchanged} already in step")
    if outcome.failed:
        parts.append(f"{len(outcome.failed)} failed")
    out.print("feed reconciled: " + ", ".join(parts), markup=False, highlight=False)
    for rid, error in sorted(outcome.failed.items()):
        out.print(f"  {rid} failed: {error}", markup=False, highlight=False, soft_wrap=True)


@feed_app.command("reconcile")
def feed_reconcile(
    everything: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Build every published record's body again and append those that differ "
            "(slower: each is scanned again), not only those missing or in an older version.",
        ),
    ] = False,
) -> None:
    """Append what is published but missing or stale in the feed, and a tombstone for what is
    no longer published. Safe to re-run: a record in step is left as it is (a second run
    appends nothing); the gate still holds what it finds personal."""
    outcome = reconcile_feed(get_settings(), everything=everything)
    print_outcome(outcome)
    if outcome.failed:
        raise typer.Exit(1)


@feed_app.command("status")
def feed_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Each published record that is not in the feed at its current version, and why: held by
    the personal-data gate, its job failed (with the error), or waiting; and every failed job."""
    from federation.reconcile import status

    settings = get_settings()
    with sync_sessions(settings) as sessions, not_configured_fails(), sessions() as session:
        found = status(session, settings)
    if as_json:
        out.print_json(found.model_dump_json())
        return
    print_status(found)


def print_status(found: "FeedStatus") -> None:
    if found.problem:
        out.print("[red]problem:[/red] ", end="")
        out.print(found.problem, markup=False, highlight=False)
    appends = sum(r.change == "append" for r in found.records)
    withdrawals = len(found.records) - appends
    if not found.records:
        out.print(f"feed in step: {found.published} published records", highlight=False)
    else:
        counts = ", ".join(f"{n} {reason}" for reason, n in found.summary.items() if n)
        out.print(
            f"feed not in step: {appends} of {found.published} published records"
            + (f", {withdrawals} to withdraw" if withdrawals else "")
            + f" ({counts})",
            highlight=False,
        )
    for r in found.records:
        what = f"{r.record_type} {r.id} v{r.version}" + (f' "{r.title}"' if r.title else "")
        ref = f" (job {r.job})" if r.job else f" (hold {r.hold})" if r.hold else ""
        todo = "to withdraw" if r.change == "withdraw" else "not in the feed"
        line = f"  {what}: {todo}, {r.reason}{ref}: {r.detail}"
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    if found.failed_jobs:
        out.print(
            f"{len(found.failed_jobs)} failed jobs (`integra jobs list`, `integra jobs retry`)",
            highlight=False,
        )
    if found.waiting_jobs:
        out.print(f"{found.waiting_jobs} jobs waiting", highlight=False)


def catch_up(settings: Settings) -> None:
    """After a key is made or rotated: bring the feed in step with what was published without
    one, and retry the jobs that failed (most for want of a key). The key stays made whatever
    happens here; a problem is said, with the command that repairs it."""
    from federation.reconcile import reconcile_all
    from node.console import err, run_in_session
    from node.core import outbox

    if not settings.country:
        return  # federation is not set up on this node: nothing travels
    try:
        with sync_sessions(settings) as sessions:
            print_outcome(reconcile_all(sessions, settings))
        retried = run_in_session(outbox.retry, settings)
    except Exception as exc:
        err.print("[yellow]warning:[/yellow] ", end="")
        err.print(
            f"the feed is not reconciled ({type(exc).__name__}: {exc}); "
            "run `integra feed reconcile`",
            markup=False,
            highlight=False,
        )
        return
    if retried:
        out.print(f"retried {len(retried)} failed jobs", highlight=False)
