"""`integra registry`: import and export the National Registration Database."""

import json
from typing import Annotated, Any

import typer
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
from node.console import TOKEN_HELP, fail, given_token, operator, run_in_session
from node.core.auth import principal_for_token

registry_app = typer.Typer(help="The National Registration Database.", no_args_is_help=True)


@registry_app.command("import")
def registry_import(file: FileArgument, format: FormatOption = ImportFormat.auto) -> None:
    """Import organisations (CSV or JSON) and, from JSON, their contact points and protocols.

    Safe to re-run: rows are matched to stored records (by ref, identifier, or country and
    name) and only real differences are written, so importing the same file twice changes
    nothing. Bad rows are reported with their row number and reason; good rows are stored.
    """
    from registry import transfer

    fmt = file_format(file, format, ("csv", "json"))
    by = operator()
    run_import(
        file,
        lambda: transfer.read_rows(file.read_bytes(), fmt),
        lambda s, rows, tick: transfer.import_rows(s, rows, by=by, progress=tick),
    )


@registry_app.command("export")
def registry_export(
    format: Annotated[
        ExportFormat,
        typer.Option(
            help="json (re-importable), csv "
            "(organisations), or hsds (Open Referral "
            "HSDS 3 organizations)."
        ),
    ] = ExportFormat.json,
    output: OutputOption = None,
    include_contacts: Annotated[
        bool,
        typer.Option(
            help="Include contact points (personal data). Needs an admin's token (--token-stdin)."
        ),
    ] = False,
    token_stdin: Annotated[bool, typer.Option("--token-stdin", help=TOKEN_HELP)] = False,
    token_argument: Annotated[str | None, typer.Option("--token", hidden=True)] = None,
) -> None:
    """Export the registry. Without --include-contacts no personal data is written."""
    from registry import transfer
    from registry.hsds import export_hsds

    if include_contacts and format is ExportFormat.csv:
        raise fail(
            "CSV export holds organisations only; use --format json or hsds with --include-contacts"
        )
    token = (
        given_token(token_stdin, token_argument, "--include-contacts")
        if (include_contacts or token_argument is not None)
        else ""
    )

    async def _export(session: AsyncSession) -> str:
        by = None
        if include_contacts:
            by = await principal_for_token(session, token)
            if by is None or not by.is_admin:
                raise fail("the token given is not a valid administrator's token", 3)
        organisations, protocols = await transfer.load_everything(
            session, with_contacts=include_contacts
        )
        if by is not None:
            transfer.audit_contact_export(session, by, organisations)
        if format is ExportFormat.hsds:
            doc: Any = export_hsds(organisations, with_contacts=include_contacts)
            return json.dumps(doc, ensure_ascii=False, indent=2)
        document = transfer.export_document(
            organisations, protocols, with_contacts=include_contacts
        )
        if format is ExportFormat.csv:
            return transfer.export_csv(document)
        return json.dumps(document, ensure_ascii=False, indent=2)

    write(run_in_session(_export), output)
