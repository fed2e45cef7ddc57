"""The kit every bulk import and export is built on: rows read from CSV or JSON files with the
number a person finds them by, spreadsheet-safe cells, and one savepoint per row, so a bad row
is refused with its reason while the good ones are stored."""

import csv
import io
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from node.core.auth import Principal
from node.core.errors import AppError

FORMULA_STARTS = ("=", "+", "-", "@")


@dataclass
class RowError:
    row: int
    what: str
    reason: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    # Rows stored, but kept from the federation's feed by the personal-data gate, and why.
    held: list[RowError] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return self.created + self.updated + self.unchanged


class FileError(Exception):
    """The file as a whole cannot be read."""


@dataclass
class Row:
    number: int
    data: dict[str, Any]
    kind: str

    @property
    def label(self) -> str:
        return str(self.data.get("ref") or self.data.get("name") or self.data.get("title") or "?")


# --- reading files ------------------------------------------------------------------------


def decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileError(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def read_json_rows(text: str, sections: dict[str, str]) -> list[Row]:
    """Rows of a JSON file ``{"<section>": [objects], ...}``; a bare list is the first section."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except (ValueError, RecursionError) as exc:  # e.g. a 5,000-digit number, deep nesting
        raise FileError(f"not usable JSON: {type(exc).__name__}") from None
    first = next(iter(sections))
    if isinstance(doc, list):
        doc = {first: doc}
    shape = f"expected a list of {first} or " + ", ".join(f'"{k}": [...]' for k in sections)
    if not isinstance(doc, dict) or not set(doc) <= set(sections):
        raise FileError(shape)
    if not all(isinstance(doc.get(k, []), list) for k in sections):
        raise FileError(shape)
    rows = [
        Row(i + 1, r, kind)
        for section, kind in sections.items()
        for i, r in enumerate(doc.get(section, []))
    ]
    for row in rows:
        if not isinstance(row.data, dict):
            raise FileError(f"{row.kind} {row.number} is not an object")
    return rows


def split(value: str) -> list[str]:
    """Items separated by ';'; a literal semicolon inside an item is written '\\;'."""
    parts = re.split(r"(?<!\\);", value)
    return [p.replace("\\;", ";").strip() for p in parts if p.strip()]


def join(items: Iterable[str]) -> str:
    return "; ".join(item.replace(";", "\\;") for item in items)


def safe_cell(value: Any) -> Any:
    """Spreadsheets run cells that start with = + - @ as formulas; quote them with an
    apostrophe (and a leading apostrophe itself), which the import takes off again."""
    if isinstance(value, str) and value[:1] in (*FORMULA_STARTS, "'"):
        return "'" + value
    return value


def unquote_cell(value: str) -> str:
    return value[1:] if value[:1] == "'" and value[1:2] in (*FORMULA_STARTS, "'") else value


def read_csv_rows(
    text: str,
    columns: list[str],
    convert: Callable[[dict[str, str | None]], dict[str, Any]],
    *,
    kind: str,
) -> list[Row]:
    """Rows numbered by the file line they start on (the header is line 1); `columns[1]` is
    the one column every file must have."""
    first_line = text.split("\n", 1)[0]
    # Spreadsheets in FR, PT, BG and GR locales save CSV with ';' between columns.
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        fieldnames = reader.fieldnames
        required = columns[1]  # the name or title column
        if not fieldnames or required not in fieldnames:
            raise FileError(
                f"the first line must name the columns, including '{required}' "
                f"(columns are separated by '{delimiter}')"
            )
        unknown = set(fieldnames) - set(columns)
        if unknown:
            raise FileError(f"unknown columns: {', '.join(sorted(unknown))}")
        rows = []
        start = reader.line_num + 1
        for record in reader:
            rows.append(Row(start, convert(record), kind))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise FileError(f"line {reader.line_num}: {exc}") from None
    return rows


# --- importing ----------------------------------------------------------------------------


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in exc.errors()
        )
    if isinstance(exc, AppError):
        return exc.detail
    return str(exc)


@dataclass
class ImportRun:
    """What one import has seen so far: its report, and each record's first row."""

    by: Principal
    is_sample: bool
    report: ImportReport = field(default_factory=ImportReport)
    first_row: dict[tuple[str, uuid.UUID], int] = field(default_factory=dict)


RunT = TypeVar("RunT", bound=ImportRun)


async def import_one(
    session: AsyncSession,
    run: RunT,
    row: Row,
    handler: Callable[[AsyncSession, RunT, Row], Awaitable[str | None]],
) -> None:
    """One row in its own savepoint: refused whole, or stored whole. The handler answers
    "created", "updated" or "unchanged" (or None to count nothing)."""
    try:
        async with session.begin_nested():
            outcome = await handler(session, run, row)
    except Exception as exc:
        run.report.errors.append(RowError(row.number, f"{row.kind} '{row.label}'", _reason(exc)))
        return
    if outcome is not None:
        setattr(run.report, outcome, getattr(run.report, outcome) + 1)


def claim(run: ImportRun, row: Row, kind: str, record_id: uuid.UUID) -> None:
    """A file that names the same record twice would flip it on every run: refuse the repeat."""
    first = run.first_row.setdefault((kind, record_id), row.number)
    if first != row.number:
        raise ValueError(f"the same {kind} as {kind} {first} of this file")
