"""`integra jobs`: the outbox's background work that is not done, and retrying what failed."""

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from node.console import out, run_in_session, run_or_fail
from node.core.settings import get_settings

jobs_app = typer.Typer(help="Background work (the outbox): waiting and failed jobs.")


def print_jobs(jobs: list[tuple[int, str, str, str, int, str | None]]) -> None:
    for job_id, state, topic, entity, attempts, error in jobs:
        line = f"{job_id} {state} {topic} {entity} ({attempts} attempts)"
        line += f": {error}" if error else ""
        out.print(line, markup=False, highlight=False, soft_wrap=True)


async def unfinished(session: AsyncSession) -> list[tuple[int, str, str, str, int, str | None]]:
    from node.core import outbox

    rows = await session.run_sync(outbox.unfinished)
    return [
        (m.id, outbox.state_of(m), m.topic, m.entity_id, m.attempts, m.last_error) for m in rows
    ]


@jobs_app.command("list")
def jobs_list() -> None:
    """The jobs not done: waiting (to be tried again at the next sweep) and failed (every
    attempt failed: they wait for `integra jobs retry`), oldest first, with their last error."""
    jobs = run_in_session(unfinished)
    if not jobs:
        out.print("no waiting or failed jobs")
    print_jobs(jobs)


@jobs_app.command("retry")
def jobs_retry(
    job: Annotated[
        int | None, typer.Argument(help="The job's id (default: every failed job).")
    ] = None,
) -> None:
    """Run failed jobs again (all, or the one named), with a fresh count of attempts, and the
    waiting ones with them. Safe to re-run: jobs are idempotent, and one done is not retried."""
    from node.core import outbox

    async def _retry(session: AsyncSession) -> list[int]:
        return await outbox.retry(session, job)

    retried = run_or_fail(_retry)
    if get_settings().broker_url:
        out.print(f"retried {len(retried)} failed jobs: queued for the workers", highlight=False)
        return
    left = [j for j in run_in_session(unfinished) if j[0] in retried]
    out.print(
        f"retried {len(retried)} failed jobs: {len(retried) - len(left)} done"
        + (f", {len(left)} not done" if left else ""),
        highlight=False,
    )
    print_jobs(left)
    if left:
        raise typer.Exit(1)
