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
from node.console import TOKEN_HELP, err, fail, given_token, operator, out, run_in_session
from node.core import audit
from node.core.auth import principal_for_token
from node.core.models import User
from node.core.settings import get_settings

practices_app = typer.Typer(help="The practice database.", no_args_is_help=True)
visits_app = typer.Typer(help="Study-visit reports.", no_args_is_help=True)
search_app = typer.Typer(help="The search index.", no_args_is_help=True)


ConfirmOption = Annotated[
    bool,
    typer.Option(
        "--confirm-no-person",
        help="You have read the texts of the rows that publish and confirm they name no person "
        "the node cannot know (the personal-data gate finds only those it knows). Needed on a "
        "node that federates (INTEGRA_COUNTRY), else such rows are refused; recorded in the "
        "audit log.",
    ),
]


@practices_app.command("import")
def practices_import(
    file: FileArgument,
    format: FormatOption = ImportFormat.auto,
    confirm_no_person: ConfirmOption = False,
) -> None:
    """Import practices, policies, tools, training kits and guides (JSON or CSV).

    Safe to re-run: rows are matched by ref, then by country and title, and only real
    differences are written. A row's `status` (draft, in_review, published, withdrawn) is
    applied as given; published ones become searchable. Rows the personal-data gate holds
    from the federation's feed are listed with the words it found (exit code 3).
    """
    import node.worker  # noqa: F401 - the feed's outbox handlers and the gate's verdict
    from practices import transfer

    fmt = file_format(file, format, ("csv", "json"))
    by = operator()
    settings = get_settings()
    run_import(
        file,
        lambda: transfer.read_practice_rows(file.read_bytes(), fmt),
        lambda s, rows, tick: transfer.import_practices(
            s, rows, by=by, progress=tick, settings=settings, confirmed=confirm_no_person
        ),
    )


@practices_app.command("withdraw")
def practices_withdraw(
    practice_id: Annotated[str, typer.Argument(help="The practice's id.")],
    reason: Annotated[str, typer.Option(help="Why it is withdrawn; shown with the record.")],
    personal_data: Annotated[
        bool,
        typer.Option(
            "--personal-data",
            help="It leaked personal data: its free text is erased on this node, and the "
            "federation purges every earlier body of it at the hub and every mirror (a signed "
            "redaction).",
        ),
    ] = False,
) -> None:
    """Withdraw a published practice: it leaves search and the federation's feed."""
    import uuid

    from node.console import run_or_fail
    from practices import service

    try:
        local_id = uuid.UUID(practice_id)
    except ValueError:
        raise fail(f"{practice_id[:80]} is not a practice id (a UUID)") from None
    if not reason.strip():
        raise fail("--reason must say why it is withdrawn")

    async def _withdraw(session: AsyncSession) -> str:
        by = operator()
        current = await service.get_practice(session, local_id, by=by)
        practice = await service.transition_practice(
            session,
            local_id,
            "withdraw",
            expected_version=current.version,
            by=by,
            reason=reason.strip(),
            personal_data=personal_data,
        )
        return str(practice.id)

    withdrawn = run_or_fail(_withdraw)
    erased = "; its free text erased and its bodies redacted" if personal_data else ""
    out.print(f"withdrew {withdrawn}{erased}", highlight=False)


@practices_app.command("scope")
def practices_scope(
    record_id: Annotated[str, typer.Argument(help="A practice's or a study-visit report's id.")],
    scope: Annotated[
        str,
        typer.Argument(
            help="public (anyone, anywhere), network (signed-in professionals: here, at the hub"
            " and on mirrors) or national (signed-in users of this node: it never leaves it)."
        ),
    ],
    reason: Annotated[str | None, typer.Option(help="Why, for the audit log.")] = None,
) -> None:
    """Set who may see a practice or a study-visit report (audited: the old scope and the
    new). A published record gets a new version and the federation follows at the hub's and
    the mirrors' next pull: narrowed to network, it is shown to signed-in readers only there;
    to national, a signed tombstone withdraws it. Safe to repeat."""
    import uuid

    import node.worker  # noqa: F401 - the feed's outbox handlers
    from node.console import run_or_fail
    from node.core.errors import NotFound
    from practices import service
    from practices.schemas import Scope
    from practices.study_visits import service as visits

    try:
        local_id = uuid.UUID(record_id)
    except ValueError:
        raise fail(f"{record_id[:80]} is not a record id (a UUID)") from None
    if scope not in Scope.__members__:
        raise fail(f"the scope is public, network or national, not {scope[:40]!r}")
    wanted = Scope(scope)

    async def _change(session: AsyncSession) -> tuple[str, str, int]:
        by = operator()
        try:
            practice = await service.change_practice_scope(
                session, local_id, wanted, by=by, reason=reason
            )
            return "practice", practice.scope, practice.version
        except NotFound:
            pass
        try:
            visit = await visits.change_study_visit_scope(
                session, local_id, wanted, by=by, reason=reason
            )
        except NotFound:
            raise NotFound(f"No practice or study-visit report with id {local_id}.") from None
        return "study-visit report", visit.scope, visit.version

    kind, now, version = run_or_fail(_change)
    out.print(f"{kind} {local_id}: scope {now} (version {version})", highlight=False)


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
    confirm_no_person: ConfirmOption = False,
) -> None:
    """Import study-visit reports (JSON). Safe to re-run: reports are matched by ref. Rows
    the personal-data gate holds from the federation's feed are listed (exit code 3)."""
    import node.worker  # noqa: F401 - the feed's outbox handlers and the gate's verdict
    from practices.study_visits import transfer

    by = operator()
    settings = get_settings()

    async def _import(session: AsyncSession, rows: list[Any], tick: Callable[[], None]) -> Any:
        author_id = None
        if author:
            author_id = await session.scalar(select(User.id).where(User.email == author.lower()))
            if author_id is None:
                raise fail(f"--author: no user with e-mail {author}")
        return await transfer.import_study_visits(
            session,
            rows,
            by=by,
            author_id=author_id,
            progress=tick,
            settings=settings,
            confirmed=confirm_no_person,
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
            help="Include participant names (personal data): needs an admin's token "
            "(--token-stdin); JSON only."
        ),
    ] = False,
    token_stdin: Annotated[bool, typer.Option("--token-stdin", help=TOKEN_HELP)] = False,
    token_argument: Annotated[str | None, typer.Option("--token", hidden=True)] = None,
) -> None:
    """Export study-visit reports. Participant names stay out unless asked for by an admin."""
    from practices.study_visits import transfer

    if include_participants and format is not ExportFormat.json:
        raise fail("participant names are exported in JSON only")
    if format is ExportFormat.hsds:
        raise fail("export study-visit reports as json or csv")
    token = (
        given_token(token_stdin, token_argument, "--include-participants")
        if (include_participants or token_argument is not None)
        else ""
    )

    async def _export(session: AsyncSession) -> str:
        if include_participants:
            by = await principal_for_token(session, token)
            if by is None or not by.is_admin:
                raise fail("the token given is not a valid administrator's token", 3)
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


@visits_app.command("withdraw")
def visits_withdraw(
    visit_id: Annotated[str, typer.Argument(help="The report's id.")],
    reason: Annotated[str, typer.Option(help="Why it is withdrawn; shown with the report.")],
    personal_data: Annotated[
        bool,
        typer.Option(
            "--personal-data",
            help="It named someone: erase its free text here and purge every earlier body "
            "of it at the hub and on mirrors.",
        ),
    ] = False,
) -> None:
    """Withdraw a published report: a signed tombstone takes it from the hub and mirrors."""
    import uuid

    import node.worker  # noqa: F401 - the feed's outbox handlers
    from node.console import run_or_fail
    from practices.study_visits import service as visits

    try:
        local_id = uuid.UUID(visit_id)
    except ValueError:
        raise fail(f"{visit_id[:80]} is not a report id (a UUID)") from None
    if not reason.strip():
        raise fail("--reason must say why it is withdrawn")

    async def _withdraw(session: AsyncSession) -> str:
        by = operator()
        current = await visits.get_study_visit(session, local_id, by=by, audited=False)
        visit = await visits.withdraw_study_visit(
            session,
            local_id,
            reason.strip(),
            expected_version=current.version,
            by=by,
            personal_data=personal_data,
        )
        return str(visit.id)

    out.print(f"withdrew {run_or_fail(_withdraw)}", highlight=False)


followup_app = typer.Typer(
    help="Recommendations of reports, followed up by their addressees.", no_args_is_help=True
)
visits_app.add_typer(followup_app, name="recommendations")


@followup_app.command("list")
def recommendations_list(
    report: Annotated[str | None, typer.Option(help="Only this report's (its id).")] = None,
    addressee: Annotated[
        str | None, typer.Option(help="Only those addressed to this organisation (id), or EU.")
    ] = None,
    status: Annotated[list[str] | None, typer.Option(help="Only in this status (repeat).")] = None,
    open_only: Annotated[
        bool, typer.Option("--open", help="Only those not yet implemented or declined.")
    ] = False,
) -> None:
    """The recommendations of every report, one a line: id, status, day, addressees, report,
    text."""
    import uuid

    from node.console import run_or_fail
    from practices.study_visits import recommendations
    from practices.vocabulary import RecommendationStatus

    known = {s.value for s in RecommendationStatus}
    for wanted in status or []:
        if wanted not in known:
            raise fail(f"--status {wanted[:40]}: one of {', '.join(sorted(known))}")
    try:
        visit_id = uuid.UUID(report) if report else None
    except ValueError:
        raise fail(f"--report {(report or '')[:80]}: not a report id (a UUID)") from None

    async def _list(session: AsyncSession) -> list[Any]:
        return await recommendations.find_recommendations(
            session,
            by=operator(),
            addressee=addressee,
            status=status or [],
            visit_id=visit_id,
            open_only=open_only,
        )

    for item in run_or_fail(_list):
        names = "; ".join(a.name for a in item.addressees)
        day = item.status_date.isoformat() if item.status_date else "-"
        line = f"{item.id}  {item.status:<19} {day}  {names}  [{item.report_title}]  {item.text}"
        out.print(line, highlight=False, markup=False, soft_wrap=True)


@followup_app.command("status")
def recommendations_status(
    recommendation_id: Annotated[str, typer.Argument(help="The recommendation's id.")],
    status: Annotated[
        str,
        typer.Argument(help="received, under_consideration, accepted, implemented or declined."),
    ],
    note: Annotated[str | None, typer.Option(help="What was decided or done.")] = None,
    day: Annotated[
        str | None, typer.Option("--date", help="The day it took effect (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Record what became of a recommendation (audited); the shared report follows."""
    import uuid

    from pydantic import ValidationError

    import node.worker  # noqa: F401 - the feed's outbox handlers
    from node.console import run_or_fail
    from practices.study_visits import recommendations
    from practices.study_visits.schemas import StatusChange

    try:
        local_id = uuid.UUID(recommendation_id)
    except ValueError:
        raise fail(f"{recommendation_id[:80]} is not a recommendation id (a UUID)") from None
    given = {"status": status, "note": note} | ({"date": day} if day else {})
    try:
        data = StatusChange.model_validate(given)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None

    async def _change(session: AsyncSession) -> str:
        item, _ = await recommendations.change_status(session, local_id, data, by=operator())
        return f"{item.id} is now {item.status} ({item.status_date})"

    out.print(run_or_fail(_change), highlight=False)


@followup_app.command("notices")
def recommendations_notices(
    visit_id: Annotated[str, typer.Argument(help="The report's id.")],
) -> None:
    """Whether each addressee of a published report was told by mail (sent; failed, with the
    error, and tried again; or no primary contact point)."""
    import uuid

    from node.console import run_or_fail
    from practices.study_visits import recommendations

    try:
        local_id = uuid.UUID(visit_id)
    except ValueError:
        raise fail(f"{visit_id[:80]} is not a report id (a UUID)") from None

    async def _notices(session: AsyncSession) -> list[Any]:
        return await recommendations.notices_of(session, local_id)

    for notice in run_or_fail(_notices):
        sent = notice.sent_at.isoformat() if notice.sent_at else ""
        error = f"  {notice.last_error}" if notice.last_error else ""
        out.print(f"{notice.name}: {notice.state} {sent}{error}", highlight=False, markup=False)


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
