"""What the `integra` import and export commands share: file formats, imports with a progress
bar on a terminal, output to a file or stdout, and JSON read from a file or a URL."""

import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
from sqlalchemy.ext.asyncio import AsyncSession

from node.console import err, fail, out, run_in_session


class ImportFormat(StrEnum):
    auto = "auto"
    csv = "csv"
    json = "json"


class ExportFormat(StrEnum):
    json = "json"
    csv = "csv"
    hsds = "hsds"


FileArgument = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]
FormatOption = Annotated[ImportFormat, typer.Option(help="Default: from the file's extension.")]
OutputOption = Annotated[Path | None, typer.Option("--output", "-o", help="Default: stdout.")]


def file_format(file: Path, format: ImportFormat, allowed: tuple[str, ...]) -> str:
    fmt = format.value if format is not ImportFormat.auto else file.suffix.lower().lstrip(".")
    if fmt not in allowed:
        raise fail(
            f"cannot tell the format of {file.name}: use --format " + " or --format ".join(allowed)
        )
    return fmt


def run_import(
    file: Path,
    read: Callable[[], list[Any]],
    importer: Callable[[AsyncSession, list[Any], Callable[[], None]], Awaitable[Any]],
) -> None:
    """Read, import with a progress bar on a terminal, report, exit 2 if rows were refused,
    else 3 if the personal-data gate holds rows from the federation's feed."""
    from node.core.tabular import FileError

    try:
        rows = read()
    except FileError as exc:
        raise fail(f"{file.name}: {exc}") from None

    async def _import(session: AsyncSession) -> Any:
        with Progress(console=err, disable=not err.is_terminal, transient=True) as bar:
            task = bar.add_task(f"importing {file.name}", total=len(rows))
            return await importer(session, rows, lambda: bar.advance(task))

    report = run_in_session(_import)
    held = report.held
    out.print(
        f"{file.name}: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.errors)} refused"
        + (f", {len(held)} held from the federation's feed" if held else "")
    )
    for error in report.errors:
        err.print(f"row {error.row} ({error.what}): {error.reason}", highlight=False)
    for row in held:
        err.print(f"row {row.row} ({row.what}): {row.reason}", highlight=False, markup=False)
    if report.errors:
        raise typer.Exit(2)
    if held:
        raise typer.Exit(3)


def load_json(source: str) -> Any:
    """A JSON document from a file or an http(s) URL, parsed strictly (64 MiB at most)."""
    from federation.canonical import parse_strict

    if source.startswith(("http://", "https://")):
        import httpx

        response = httpx.get(source, timeout=30)
        response.raise_for_status()
        data = response.content
    else:
        data = Path(source).read_bytes()
    return parse_strict(data, max_bytes=64 * 1024 * 1024)


def write(text: str, output: Path | None) -> None:
    """To the output file (said on stderr), or to stdout ending with a newline."""
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")
