"""`integra privacy`: a data subject's requests (find, export, erase), retention, and the
record of processing activities."""

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from node.console import fail, operator, out, refusals_fail, run_or_fail
from node.core.settings import get_settings
from node.privacy import record as processing
from node.privacy import service
from node.privacy.render import TITLES, export_markdown

privacy_app = typer.Typer(
    help="Personal data: a person's requests (find, export, erase), retention, and the record "
    "of processing activities.",
    no_args_is_help=True,
)

Names = Annotated[
    list[str], typer.Option("--name", help="A name of the person, any script; repeat for more.")
]
Emails = Annotated[list[str], typer.Option("--email", help="An e-mail address; repeat for more.")]
Phones = Annotated[list[str], typer.Option("--phone", help="A phone number; repeat for more.")]
Request = Annotated[
    str | None,
    typer.Option("--request", help="The request's reference (e.g. DSR-2026-014), audited."),
]


def _person(names: list[str], emails: list[str], phones: list[str]) -> service.Person:
    with refusals_fail():
        return service.Person(tuple(names), tuple(emails), tuple(phones)).checked()


def _reference(request: str | None, person: service.Person, *, required: bool) -> str | None:
    with refusals_fail():
        return service.check_reference(request, person, required=required)


def _sync(work: Any) -> Any:
    """Run a synchronous privacy service in one transaction of the configured database."""

    async def run(session: AsyncSession) -> Any:
        return await session.run_sync(work)

    return run_or_fail(run)


@privacy_app.command("find")
def find(
    name: Names = [],  # noqa: B006
    email: Emails = [],  # noqa: B006
    phone: Phones = [],  # noqa: B006
    request: Request = None,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON, for scripts.")] = False,
) -> None:
    """List every place the person appears: accounts, contact points, participants, audit
    entries, the free text of practices, reports and the gate's holds. Names match in any
    script and inflected (a surname alone too): review the list before `erase`."""
    person = _person(name, email, phone)
    reference = _reference(request, person, required=False)
    settings = get_settings()

    def work(session: Session) -> list[Any]:
        return service.find(session, person, settings, by=operator(), request=reference)

    places = _sync(work)
    if as_json:
        typer.echo(json.dumps([p.as_json() for p in places], ensure_ascii=False, indent=2))
        return
    for place in places:
        found = ", ".join(place.found)
        line = f"{place.kind:<24} {place.id:<36} {place.field:<20} {found}"
        out.print(line, highlight=False, soft_wrap=True, markup=False)
    out.print(f"{len(places)} places", highlight=False)


@privacy_app.command("export")
def export(
    directory: Annotated[Path, typer.Argument(help="Where to write person.md and person.json.")],
    name: Names = [],  # noqa: B006
    email: Emails = [],  # noqa: B006
    phone: Phones = [],  # noqa: B006
    request: Request = None,
) -> None:
    """Write what this node holds about the person: person.md (to read) and person.json (for
    machines), named after the request if one is given. Safe to re-run: it overwrites them."""
    person = _person(name, email, phone)
    reference = _reference(request, person, required=False)
    settings = get_settings()

    def work(session: Session) -> dict[str, Any]:
        return service.export(session, person, settings, by=operator(), request=reference)

    data = _sync(work)
    stem = (reference or "person").replace("/", "-").replace(":", "-")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"cannot write to {directory}: {exc}") from None
    readable, machine = directory / f"{stem}.md", directory / f"{stem}.json"
    _private(readable, export_markdown(data))
    _private(machine, json.dumps(data, ensure_ascii=False, indent=2))
    out.print(f"{len(data['places'])} places: wrote {readable} and {machine}", highlight=False)


def _private(path: Path, text: str) -> None:
    """Write a file only its owner reads: it holds a person's data."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(path, 0o600)
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc}") from None


@privacy_app.command("erase")
def erase(
    request: Annotated[
        str, typer.Option("--request", help="The request's reference (required), audited.")
    ],
    name: Names = [],  # noqa: B006
    email: Emails = [],  # noqa: B006
    phone: Phones = [],  # noqa: B006
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove or pseudonymise every place `find` lists, in one transaction: accounts and
    contact points deleted, participants removed, every mention replaced by [removed]; a shared
    record that named the person is republished without the name and its earlier bodies
    redacted at the hub and every mirror. Audited under the request's reference, never the
    data. Re-running it finds nothing more to erase."""
    person = _person(name, email, phone)
    reference = _reference(request, person, required=True)
    assert reference is not None
    if not yes:
        typer.confirm("Erase every place `integra privacy find` lists?", abort=True)
    settings = get_settings()

    def work(session: Session) -> service.Erasure:
        return service.erase(session, person, settings, by=operator(), request=reference)

    done = _sync(work)
    from federation.redaction import scrub
    from node.core.db import create_sync_engine

    engine = create_sync_engine(settings.sqlalchemy_url)
    try:
        scrub(engine)  # no trace left in the database's files once the jobs are done
    finally:
        engine.dispose()
    for kind, count in sorted(done.erased.counts.items()):
        out.print(f"{kind:<32} {count}", highlight=False)
    for record in done.redacted:
        out.print(f"republished without the person, earlier versions redacted: {record}")
    out.print(f"request {reference}: erased", highlight=False, markup=False)


@privacy_app.command("retention")
def retention(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be removed.")
    ] = False,
    now: Annotated[
        datetime | None,
        typer.Option(help="Apply as of this UTC time instead of now (to preview the future)."),
    ] = None,
) -> None:
    """Remove the personal data kept past its retention period (the settings retention_*:
    `integra config show`); the node does it every retention_interval. Audited in counts by
    kind. Safe to re-run: what is gone is gone, the rest is within its period."""
    settings = get_settings()
    when = None
    if now is not None:
        from datetime import UTC

        when = now if now.tzinfo else now.replace(tzinfo=UTC)

    def work(session: Session) -> list[Any]:
        return service.retention(session, settings, now=when, dry_run=dry_run, by=operator())

    done = _sync(work)
    verb = "would remove" if dry_run else "removed"
    for row in service.retention_json(done):
        period = "kept for ever" if row["kept_forever"] else f"after {row['period_days']} days"
        label = TITLES.get(row["kind"], row["kind"])
        out.print(f"{label:<36} {verb} {row['count']:>6}  ({period})", highlight=False)


@privacy_app.command("record")
def record(
    as_json: Annotated[bool, typer.Option("--json", help="As JSON instead of Markdown.")] = False,
    output: Annotated[Path | None, typer.Option("--out", help="Write it to this file.")] = None,
) -> None:
    """The record of processing activities (GDPR art. 30, Directive 2016/680 art. 24) of this
    node, generated from its data model and configuration."""
    data = processing.record(get_settings())
    text = json.dumps(data, ensure_ascii=False, indent=2) if as_json else processing.markdown(data)
    if output is None:
        out.print(text, highlight=False, markup=False, soft_wrap=True)
        return
    try:
        output.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc}") from None
    out.print(f"wrote {output}", highlight=False)
