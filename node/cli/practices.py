"""`integra practices`, `integra study-visits` and `integra search`: the practice database,
study-visit reports, and the search index built from them."""

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.progress import Progress
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from node.cli.files import (
    ExportFormat,
    FileArgument,
    FormatOption,
    ImportFormat,
    OutputOption,
    file_format,
    run_import,
    write,
)
from node.console import err, fail, operator, out, run_in_session
from node.core import audit
from node.core.auth import principal_for_token
from node.core.models import User
from node.core.settings import get_settings

practices_app = typer.Typer(help="The practice database.", no_args_is_help=True)
visits_app = typer.Typer(help="Study-visit reports.", no_args_is_help=True)
search_app = typer.Typer(help="The search index.", no_args_is_help=True)


@practices_app.command("import")
def practices_import(file: FileArgument, format: FormatOption = ImportFormat.auto) -> None:
    """Import practices, policies, tools, training kits and guides (JSON or CSV).

    Safe to re-run: rows are matched by ref, then by country and title, and only real
    differences are written. A row's `status` (draft, in_review, published, withdrawn) is
    applied as given; published ones become searchable.
    """
    from practices import transfer

    fmt = file_format(file, format, ("csv", "json"))
    by = operator()
    run_import(
        file,
        lambda: transfer.read_practice_rows(file.read_bytes(), fmt),
        lambda s, rows, tick: transfer.import_practices(s, rows, by=by, progress=tick),
    )


@practices_app.command("export")
def practices_export(
    format: Annotated[
        ExportFormat, typer.Option(help="json (re-importable) or csv.")
    ] = ExportFormat.json,
    output: OutputOption = None,
) -> None:
    """Export every practice record, in the format `practices import` reads."""
    from practices import transfer

    if format is ExportFormat.hsds:
        raise fail("HSDS describes organisations; export practices as json or csv")

    async def _export(session: AsyncSession) -> str:
        rows = await transfer.export_practices(session)
        if format is ExportFormat.csv:
            return transfer.practices_csv(rows)
        return json.dumps({"practices": rows}, ensure_ascii=False, indent=2)

    write(run_in_session(_export), output)


@visits_app.command("import")
def visits_import(
    file: FileArgument,
    author: Annotated[
        str | None, typer.Option(help="E-mail of the user recorded as author of new reports.")
    ] = None,
) -> None:
    """Import study-visit reports (JSON). Safe to re-run: reports are matched by ref."""
    from practices.study_visits import transfer

    by = operator()

    async def _import(session: AsyncSession, rows: list[Any], tick: Callable[[], None]) -> Any:
        author_id = None
        if author:
            author_id = await session.scalar(select(User.id).where(User.email == author.lower()))
            if author_id is None:
                raise fail(f"--author: no user with e-mail {author}")
        return await transfer.import_study_visits(
            session, rows, by=by, author_id=author_id, progress=tick
        )

    run_import(file, lambda: transfer.read_study_visit_rows(file.read_bytes()), _import)


@visits_app.command("export")
def visits_export(
    format: Annotated[
        ExportFormat, typer.Option(help="json or csv (an overview).")
    ] = ExportFormat.json,
    output: OutputOption = None,
    include_participants: Annotated[
        bool,
        typer.Option(
            help="Include participant names (personal data): needs --token of an admin; JSON only."
        ),
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="INTEGRA_TOKEN", help="An admin's API token, with --include-participants."
        ),
    ] = None,
) -> None:
    """Export study-visit reports. Participant names stay out unless asked for by an admin."""
    from practices.study_visits import transfer

    if include_participants and format is not ExportFormat.json:
        raise fail("participant names are exported in JSON only")
    if format is ExportFormat.hsds:
        raise fail("export study-visit reports as json or csv")
    if include_participants and not token:
        raise fail("--include-participants needs --token with an administrator's API token")

    async def _export(session: AsyncSession) -> str:
        if include_participants:
            by = await principal_for_token(session, token or "")
            if by is None or not by.is_admin:
                raise fail("--token is not a valid administrator's token", 3)
            audit.record(
                session,
                by,
                action="export",
                entity_type="study_visit",
                entity_id=None,
                detail={"participants": True},
            )
        rows = await transfer.export_study_visits(session, with_participants=include_participants)
        if format is ExportFormat.csv:
            return transfer.study_visits_csv(rows)
        return json.dumps({"study_visits": rows}, ensure_ascii=False, indent=2)

    write(run_in_session(_export), output)


@search_app.command("reindex")
def search_reindex() -> None:
    """Rebuild the search index from the database. Safe to re-run at any time: it clears the
    index and writes every published practice again, in one transaction."""
    from node.core.outbox import JobContext
    from practices.search import make_backend
    from practices.tasks import reindex_all

    settings = get_settings()
    context = JobContext(search=make_backend(settings), settings=settings)

    async def _reindex(session: AsyncSession) -> int:
        with Progress(console=err, disable=not err.is_terminal, transient=True) as bar:
            task = bar.add_task("indexing", total=None)
            return await session.run_sync(
                lambda sync: reindex_all(sync, context, lambda n: bar.advance(task, n))
            )

    count = run_in_session(_reindex)
    out.print(f"indexed {count} published practices ({context.search.name} search)")
