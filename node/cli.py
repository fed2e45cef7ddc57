"""The `integra` command."""

import asyncio
import getpass
import json
import secrets
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from node import migrations
from node.core import audit
from node.core.auth import (
    UserRole,
    hash_password,
    hash_token,
    issue_token,
    principal_for_token,
    system_principal,
    verify_password,
)
from node.core.db import create_engine, session_factory, utcnow
from node.core.models import ApiToken, User, UserOrganisation
from node.core.settings import Role, Settings, get_settings
from registry.models import Organisation

if TYPE_CHECKING:
    from federation.hub import Round

app = typer.Typer(
    help="Integra Exchange: a national node of the federated registry.", no_args_is_help=True
)
db_app = typer.Typer(help="The node's database.", no_args_is_help=True)
user_app = typer.Typer(help="Local user accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
registry_app = typer.Typer(help="The National Registration Database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(registry_app, name="registry")

err = Console(stderr=True)
out = Console()


@app.callback()
def _settings_first() -> None:
    """Read the settings before any command, so that a bad one is named, not a traceback."""
    from pydantic import ValidationError

    try:
        get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper()
            where = f"{name if name == 'DATABASE_URL' else 'INTEGRA_' + name}: " if name else ""
            err.print(f"bad setting: {where}{error['msg']}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


T = TypeVar("T")
SAMPLE_AUTHOR = "practitioner@example.org"
SAMPLE_ACCOUNTS = (
    ("admin@example.org", "Sample National Point administrator", UserRole.admin),
    (SAMPLE_AUTHOR, "Sample practitioner", UserRole.practitioner),
)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def run_in_session(
    work: Callable[[AsyncSession], Awaitable[T]], settings: Settings | None = None
) -> T:
    """Run ``work`` in one transaction against the configured database (migrated first)."""
    settings = settings or get_settings()
    migrations.upgrade(settings.sqlalchemy_url)

    async def _run() -> T:
        from node.core import outbox
        from practices.search import make_backend

        engine = create_engine(settings.sqlalchemy_url, pooled=False)
        try:
            async with session_factory(engine)() as session:
                try:
                    result = await work(session)
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise
                await outbox.after_commit(
                    session,
                    settings,
                    outbox.JobContext(search=make_backend(settings), settings=settings),
                )
                return result
        finally:
            await engine.dispose()

    return asyncio.run(_run())


def console_actor() -> str:
    return f"cli:{getpass.getuser()}"


# --- db -----------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration. Safe to run again: an up-to-date database is left as is."""
    settings = get_settings()
    migrations.upgrade(settings.sqlalchemy_url)
    out.print(f"database at {migrations.head_revision()}")


# --- serve --------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    sample_data: Annotated[
        bool,
        typer.Option(
            "--sample-data",
            help="Load the sample registry, practices and study visits from the INTEGRA "
            "report before starting: all of them, or only INTEGRA_COUNTRY's on a national "
            "node; none on a hub. Safe to repeat.",
        ),
    ] = False,
) -> None:
    """Migrate the database and start the node's web API."""
    import uvicorn

    from node.app import create_app

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    migrations.upgrade(settings.sqlalchemy_url)
    if sample_data and settings.role is Role.hub:
        out.print("a hub holds no sample data of its own: it pulls the nodes' records")
    elif sample_data:
        _load_sample(settings.country)
    url = f"http://{host}:{port}"
    out.print(f"Integra Exchange node ready at [bold]{url}[/bold]  (API docs: {url}/docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def _load_sample(country: str | None) -> None:
    from node import sample
    from practices import transfer as practice_transfer
    from registry import transfer

    by = system_principal("sample-data")
    data = sample.load(country)
    if country and country != sample.EVERY_COUNTRY:
        out.print(f"sample data of {country} only (INTEGRA_COUNTRY)")
    rows = transfer.read_rows(sample.as_bytes(data.registry), "json")
    _report_sample(
        "registry", run_in_session(lambda s: transfer.import_rows(s, rows, by=by, is_sample=True))
    )
    password = run_in_session(_sample_accounts)
    rows = practice_transfer.read_practice_rows(sample.as_bytes(data.practices), "json")
    _report_sample(
        "practices",
        run_in_session(
            lambda s: practice_transfer.import_practices(s, rows, by=by, is_sample=True)
        ),
    )

    async def _visits(session: AsyncSession) -> transfer.ImportReport:
        author = await session.scalar(select(User.id).where(User.email == SAMPLE_AUTHOR))
        visit_rows = practice_transfer.read_study_visit_rows(sample.as_bytes(data.study_visits))
        return await practice_transfer.import_study_visits(
            session, visit_rows, by=by, author_id=author, is_sample=True
        )

    _report_sample("study-visit reports", run_in_session(_visits))
    if password:
        out.print(
            "sample accounts (password shown once): admin@example.org, "
            f"{SAMPLE_AUTHOR} — password [bold]{password}[/bold]"
        )


def _report_sample(what: str, report: Any) -> None:
    if report.errors:
        for e in report.errors:
            err.print(f"sample {what} row {e.row} {e.what}: {e.reason}", highlight=False)
        raise fail(f"the sample {what} did not load cleanly")
    out.print(
        f"sample {what}: {report.created} added, {report.updated} updated, "
        f"{report.unchanged} already present"
    )


async def _sample_accounts(session: AsyncSession) -> str | None:
    if await session.scalar(select(User.id).limit(1)) is not None:
        return None
    password = secrets.token_urlsafe(12)
    await set_sample_accounts(session, password)
    return password


async def set_sample_accounts(session: AsyncSession, password: str) -> None:
    """Create the sample accounts with this password, or give it to them if they exist."""
    for email, name, role in SAMPLE_ACCOUNTS:
        user = await session.scalar(select(User).where(User.email == email))
        if user is None:
            session.add(
                User(email=email, name=name, role=role, password_hash=hash_password(password))
            )
        elif not verify_password(user.password_hash, password):
            user.password_hash = hash_password(password)
            user.updated_at = utcnow()


# --- users and tokens ---------------------------------------------------------------------


async def _find_organisations(session: AsyncSession, keys: list[str]) -> list[Any]:
    import uuid

    from registry import repository

    found = []
    for key in keys:
        organisation = await repository.find_organisation_by_ref(session, key)
        if organisation is None:
            try:
                organisation = await repository.get_organisation(session, uuid.UUID(key))
            except ValueError:
                organisation = None
        if organisation is None:
            raise fail(f"--org {key}: no organisation with this ref or id")
        found.append(organisation)
    return found


@user_app.command("add")
def user_add(
    email: str,
    role: Annotated[
        UserRole, typer.Option(help="admin (the National Point), editor, or practitioner.")
    ],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    org: Annotated[
        list[str],
        typer.Option(help="Ref or id of an organisation an editor may edit; repeat for several."),
    ] = [],  # noqa: B006
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input instead of prompting.")
    ] = False,
) -> None:
    """Add a local account. The password is asked for (or read from stdin), never an argument."""
    from pydantic import EmailStr, TypeAdapter, ValidationError

    try:
        email = TypeAdapter(EmailStr).validate_python(email).lower()
    except ValidationError:
        raise fail(f"'{email}' is not an e-mail address") from None
    if org and role is not UserRole.editor:
        raise fail("--org is for editors: admins edit everything, practitioners nothing")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 12:
        raise fail("the password must be at least 12 characters")

    async def _add(session: AsyncSession) -> None:
        if await session.scalar(select(User.id).where(User.email == email)) is not None:
            raise fail(f"a user with e-mail {email} exists already")
        organisations = await _find_organisations(session, org)
        user = User(
            email=email, name=name or email, role=role, password_hash=hash_password(password)
        )
        session.add(user)
        await session.flush()
        for organisation in organisations:
            session.add(UserOrganisation(user_id=user.id, organisation_id=organisation.id))
        audit.record(
            session,
            system_principal(console_actor()),
            action="create",
            entity_type="user",
            entity_id=user.id,
            detail={"role": str(role), "organisations": [str(o.id) for o in organisations]},
        )

    run_in_session(_add)
    out.print(f"added {role} {email}" + (f" (editor of {', '.join(org)})" if org else ""))


@token_app.command("create")
def token_create(
    email: Annotated[str, typer.Argument(help="The user the token acts as.")],
    name: Annotated[str, typer.Option(help="What the token is for, e.g. 'nightly export'.")],
    days: Annotated[
        int | None, typer.Option(min=1, help="Expire after this many days (default: never).")
    ] = None,
) -> None:
    """Create an API token. It is printed once; only its hash is stored."""

    async def _create(session: AsyncSession) -> str:
        user = await session.scalar(select(User).where(User.email == email.lower()))
        if user is None or not user.is_active:
            raise fail(f"no active user with e-mail {email}")
        expires_at = utcnow() + timedelta(days=days) if days else None
        token = await issue_token(session, user=user, name=name, expires_at=expires_at)
        audit.record(
            session,
            system_principal(console_actor()),
            action="token_issue",
            entity_type="user",
            entity_id=user.id,
            detail={"token": token[:8], "name": name},
        )
        return token

    token = run_in_session(_create)
    err.print("Store this token now; it cannot be shown again:")
    typer.echo(token)


@user_app.command("list")
def user_list() -> None:
    """List accounts: e-mail, role, active, and the organisations an editor may edit."""

    async def _list(session: AsyncSession) -> list[str]:
        users = (await session.scalars(select(User).order_by(User.email))).all()
        lines = []
        for user in users:
            refs = await session.scalars(
                select(Organisation.ref)
                .join(UserOrganisation, UserOrganisation.organisation_id == Organisation.id)
                .where(UserOrganisation.user_id == user.id)
            )
            state = "active" if user.is_active else "inactive"
            lines.append(f"{user.email}\t{user.role}\t{state}\t{', '.join(r or '' for r in refs)}")
        return lines

    for line in run_in_session(_list):
        typer.echo(line)


@user_app.command("set")
def user_set(
    email: str,
    role: Annotated[UserRole | None, typer.Option(help="A new role.")] = None,
    org: Annotated[
        list[str],
        typer.Option(help="Replace an editor's organisations (ref or id); repeat for several."),
    ] = [],  # noqa: B006
    active: Annotated[
        bool | None,
        typer.Option(
            "--active/--inactive", help="Allow or stop sign-in; --inactive also stops its tokens."
        ),
    ] = None,
) -> None:
    """Change an account's role, an editor's organisations, or whether it may sign in."""

    async def _set(session: AsyncSession) -> None:
        user = await session.scalar(select(User).where(User.email == email.lower()))
        if user is None:
            raise fail(f"no user with e-mail {email}")
        changes: dict[str, Any] = {}
        if role is not None and role != user.role:
            user.role = role
            changes["role"] = str(role)
        if active is not None and active != user.is_active:
            user.is_active = active
            changes["active"] = active
        if org:
            if (role or user.role) != UserRole.editor:
                raise fail("--org is for editors")
            organisations = await _find_organisations(session, org)
            await session.execute(
                delete(UserOrganisation).where(UserOrganisation.user_id == user.id)
            )
            for organisation in organisations:
                session.add(UserOrganisation(user_id=user.id, organisation_id=organisation.id))
            changes["organisations"] = [str(o.id) for o in organisations]
        if changes:
            user.updated_at = utcnow()
            audit.record(
                session,
                system_principal(console_actor()),
                action="update",
                entity_type="user",
                entity_id=user.id,
                detail=changes,
            )

    run_in_session(_set)
    out.print(f"updated {email}")


@token_app.command("list")
def token_list(email: str) -> None:
    """A user's tokens: prefix, name, created, expires, last used, revoked."""

    async def _list(session: AsyncSession) -> list[str]:
        user = await session.scalar(select(User).where(User.email == email.lower()))
        if user is None:
            raise fail(f"no user with e-mail {email}")
        tokens = await session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at)
        )
        lines = []
        for t in tokens:
            expiry = f"expires {t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "no expiry"
            revoked = "\trevoked" if t.revoked_at else ""
            lines.append(f"{t.prefix}\t{t.name}\t{t.created_at:%Y-%m-%d}\t{expiry}{revoked}")
        return lines

    for line in run_in_session(_list):
        typer.echo(line)


@token_app.command("revoke")
def token_revoke(
    prefix: Annotated[
        str,
        typer.Argument(
            help="The token's first characters, as `token "
            "list` shows them (e.g. ixt_AbCd), or the whole token."
        ),
    ],
) -> None:
    """Revoke a token at once. Safe to repeat."""

    async def _revoke_matching(session: AsyncSession) -> int:
        candidates = (
            await session.scalars(select(ApiToken).where(ApiToken.revoked_at.is_(None)))
        ).all()
        hashed = hash_token(prefix)
        matches = [
            t
            for t in candidates
            if t.token_hash == hashed or (len(prefix) >= 8 and t.prefix == prefix[:8])
        ]
        if not matches:
            raise fail(f"no active token matches {prefix[:8]}")
        if len(matches) > 1:
            raise fail(f"{len(matches)} tokens start with {prefix[:8]}: give the whole token")
        matches[0].revoked_at = utcnow()
        audit.record(
            session,
            system_principal(console_actor()),
            action="token_revoke",
            entity_type="user",
            entity_id=matches[0].user_id,
            detail={"token": matches[0].prefix},
        )
        return 1

    run_in_session(_revoke_matching)
    out.print(f"revoked {prefix[:8]}")


# --- registry import/export ---------------------------------------------------------------


class ImportFormat(StrEnum):
    auto = "auto"
    csv = "csv"
    json = "json"


class ExportFormat(StrEnum):
    json = "json"
    csv = "csv"
    hsds = "hsds"


def _file_format(file: Path, format: "ImportFormat", allowed: tuple[str, ...]) -> str:
    fmt = format.value if format is not ImportFormat.auto else file.suffix.lower().lstrip(".")
    if fmt not in allowed:
        raise fail(
            f"cannot tell the format of {file.name}: use --format " + " or --format ".join(allowed)
        )
    return fmt


def _run_import(
    file: Path,
    read: Callable[[], list[Any]],
    importer: Callable[[AsyncSession, list[Any], Callable[[], None]], Awaitable[Any]],
) -> None:
    """Read, import with a progress bar on a terminal, report, exit 2 if rows were refused."""
    from registry.transfer import FileError

    try:
        rows = read()
    except FileError as exc:
        raise fail(f"{file.name}: {exc}") from None

    async def _import(session: AsyncSession) -> Any:
        with Progress(console=err, disable=not err.is_terminal, transient=True) as bar:
            task = bar.add_task(f"importing {file.name}", total=len(rows))
            return await importer(session, rows, lambda: bar.advance(task))

    report = run_in_session(_import)
    out.print(
        f"{file.name}: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.errors)} refused"
    )
    for error in report.errors:
        err.print(f"row {error.row} ({error.what}): {error.reason}", highlight=False)
    if report.errors:
        raise typer.Exit(2)


FileArgument = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]
FormatOption = Annotated[ImportFormat, typer.Option(help="Default: from the file's extension.")]


@registry_app.command("import")
def registry_import(file: FileArgument, format: FormatOption = ImportFormat.auto) -> None:
    """Import organisations (CSV or JSON) and, from JSON, their contact points and protocols.

    Safe to re-run: rows are matched to stored records (by ref, identifier, or country and
    name) and only real differences are written, so importing the same file twice changes
    nothing. Bad rows are reported with their row number and reason; good rows are stored.
    """
    from registry import transfer

    fmt = _file_format(file, format, ("csv", "json"))
    by = system_principal(console_actor())
    _run_import(
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
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: stdout.")] = None,
    include_contacts: Annotated[
        bool,
        typer.Option(help="Include contact points (personal data). Needs --token of an admin."),
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="INTEGRA_TOKEN", help="An admin's API token, required with --include-contacts."
        ),
    ] = None,
) -> None:
    """Export the registry. Without --include-contacts no personal data is written."""
    from registry import transfer

    if include_contacts and format is ExportFormat.csv:
        raise fail(
            "CSV export holds organisations only; use --format json or hsds with --include-contacts"
        )
    if include_contacts and not token:
        raise fail("--include-contacts needs --token with an administrator's API token")

    async def _export(session: AsyncSession) -> str:
        by = None
        if include_contacts:
            by = await principal_for_token(session, token or "")
            if by is None or not by.is_admin:
                raise fail("--token is not a valid administrator's token", 3)
        organisations, protocols = await transfer.load_everything(
            session, with_contacts=include_contacts
        )
        if by is not None:
            transfer.audit_contact_export(session, by, organisations)
        if format is ExportFormat.hsds:
            doc: Any = transfer.export_hsds(organisations, with_contacts=include_contacts)
            return json.dumps(doc, ensure_ascii=False, indent=2)
        document = transfer.export_document(
            organisations, protocols, with_contacts=include_contacts
        )
        if format is ExportFormat.csv:
            return transfer.export_csv(document)
        return json.dumps(document, ensure_ascii=False, indent=2)

    text = run_in_session(_export)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")


practices_app = typer.Typer(help="The practice database.", no_args_is_help=True)
visits_app = typer.Typer(help="Study-visit reports.", no_args_is_help=True)
search_app = typer.Typer(help="The search index.", no_args_is_help=True)
app.add_typer(practices_app, name="practices")
app.add_typer(visits_app, name="study-visits")
app.add_typer(search_app, name="search")


@practices_app.command("import")
def practices_import(file: FileArgument, format: FormatOption = ImportFormat.auto) -> None:
    """Import practices, policies, tools, training kits and guides (JSON or CSV).

    Safe to re-run: rows are matched by ref, then by country and title, and only real
    differences are written. A row's `status` (draft, in_review, published, withdrawn) is
    applied as given; published ones become searchable.
    """
    from practices import transfer

    fmt = _file_format(file, format, ("csv", "json"))
    by = system_principal(console_actor())
    _run_import(
        file,
        lambda: transfer.read_practice_rows(file.read_bytes(), fmt),
        lambda s, rows, tick: transfer.import_practices(s, rows, by=by, progress=tick),
    )


@practices_app.command("export")
def practices_export(
    format: Annotated[
        ExportFormat, typer.Option(help="json (re-importable) or csv.")
    ] = ExportFormat.json,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: stdout.")] = None,
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

    _write(run_in_session(_export), output)


@visits_app.command("import")
def visits_import(
    file: FileArgument,
    author: Annotated[
        str | None, typer.Option(help="E-mail of the user recorded as author of new reports.")
    ] = None,
) -> None:
    """Import study-visit reports (JSON). Safe to re-run: reports are matched by ref."""
    from practices import transfer

    by = system_principal(console_actor())

    async def _import(session: AsyncSession, rows: list[Any], tick: Callable[[], None]) -> Any:
        author_id = None
        if author:
            author_id = await session.scalar(select(User.id).where(User.email == author.lower()))
            if author_id is None:
                raise fail(f"--author: no user with e-mail {author}")
        return await transfer.import_study_visits(
            session, rows, by=by, author_id=author_id, progress=tick
        )

    _run_import(file, lambda: transfer.read_study_visit_rows(file.read_bytes()), _import)


@visits_app.command("export")
def visits_export(
    format: Annotated[
        ExportFormat, typer.Option(help="json or csv (an overview).")
    ] = ExportFormat.json,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: stdout.")] = None,
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
    from practices import transfer

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

    _write(run_in_session(_export), output)


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


keys_app = typer.Typer(help="This node's signing keys (Ed25519).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("init")
def keys_init() -> None:
    """Create this node's signing key. Safe to re-run: an existing key is kept and shown."""
    key_id, public, created = create_signing_key(get_settings())
    out.print(("created " if created else "already has ") + f"key {key_id}")
    _print_key(key_id, public)


def create_signing_key(settings: Settings) -> tuple[str, str, bool]:
    """The active signing key (id, public key), made first if there is none: (…, created)."""
    from federation import feed, keys
    from federation.models import NodeKey

    async def _init(session: AsyncSession) -> tuple[str, str, bool]:
        current = await session.scalar(select(NodeKey).where(NodeKey.retired_at.is_(None)))
        if current is not None:
            return current.key_id, current.public_key, False
        key = keys.generate()
        keys.save(key, feed.key_path(settings, key.key_id))
        session.add(NodeKey(key_id=key.key_id, public_key=key.public_b64))
        audit.record(
            session,
            system_principal(console_actor()),
            action="key_create",
            entity_type="node_key",
            entity_id=key.key_id,
        )
        return key.key_id, key.public_b64, True

    return run_in_session(_init, settings)


def _print_key(key_id: str, public: str) -> None:
    from federation import keys

    out.print(f"  fingerprint {keys.fingerprint(key_id)}\n  public key  {public}")


@keys_app.command("show")
def keys_show() -> None:
    """Every key this node has had, newest first, with fingerprints to read out to the hub."""
    from federation.models import NodeKey

    async def _show(session: AsyncSession) -> list[tuple[str, str, str]]:
        rows = await session.scalars(select(NodeKey).order_by(NodeKey.created_at.desc()))
        return [(k.key_id, k.public_key, "retired" if k.retired_at else "active") for k in rows]

    rows = run_in_session(_show)
    if not rows:
        raise fail("no signing key yet: run `integra keys init`")
    for key_id, public, state in rows:
        out.print(f"{key_id} ({state})")
        _print_key(key_id, public)


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Make a new signing key and announce it, signed by the old key and the new one. The old
    key is retired: subscribers keep trusting what it signed before now."""
    from federation import feed, keys
    from federation.canonical import canonical
    from federation.models import NodeKey

    settings = get_settings()

    async def _rotate(session: AsyncSession) -> tuple[str, str]:
        current = await session.scalar(select(NodeKey).where(NodeKey.retired_at.is_(None)))
        if current is None:
            raise fail("no signing key yet: run `integra keys init`")
        old = keys.load(feed.key_path(settings, current.key_id))
        new = keys.generate()
        now = utcnow()
        statement = {
            "type": "key-rotation",
            "origin": settings.country,
            "previous": old.key_id,
            "key": new.key_id,
            "public_key": new.public_b64,
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        signed = canonical(statement)
        announcement = {
            "statement": statement,
            "signatures": [
                {"key": old.key_id, "sig": old.sign(signed)},
                {"key": new.key_id, "sig": new.sign(signed)},
            ],
        }
        keys.save(new, feed.key_path(settings, new.key_id))
        current.retired_at = now
        session.add(
            NodeKey(
                key_id=new.key_id,
                public_key=new.public_b64,
                announcement=announcement,
                created_at=now,
            )
        )
        audit.record(
            session,
            system_principal(console_actor()),
            action="key_rotate",
            entity_type="node_key",
            entity_id=new.key_id,
            detail={"previous": old.key_id},
        )
        return new.key_id, new.public_b64

    key_id, public = run_in_session(_rotate)
    out.print(f"new key {key_id}, announced under the previous one")
    _print_key(key_id, public)


hub_app = typer.Typer(help="The EU hub: enrolled nodes and signed sync.", no_args_is_help=True)
app.add_typer(hub_app, name="hub")


@hub_app.command("enrol")
def hub_enrol(
    country: Annotated[
        str, typer.Option(help="The node's ISO country code: the only origin it may speak for.")
    ],
    url: Annotated[str, typer.Option(help="The node's base URL, e.g. https://node.example.pt")],
    key: Annotated[
        list[str],
        typer.Option(
            help="A public key of the node (base64url, as "
            "`integra keys show` prints it); repeat for several."
        ),
    ],
) -> None:
    """Enrol a node, or add keys to an enrolled one. Keys are exchanged out of band: compare
    the fingerprints printed here with the node operator's before trusting them."""
    from federation import keys as keyring

    origin = country.upper()
    if len(origin) != 2 or not origin.isalpha():
        raise fail("--country takes an ISO 3166-1 alpha-2 code, e.g. PT")
    if not url.startswith(("http://", "https://")):
        raise fail("--url must start with http:// or https://")
    key_ids = enrol_peer(get_settings(), origin=origin, url=url, public_keys=key)
    out.print(f"enrolled {origin} at {url}")
    for key_id in key_ids:
        out.print(f"  key {key_id}\n  fingerprint {keyring.fingerprint(key_id)}")


def enrol_peer(
    settings: Settings, *, origin: str, url: str, public_keys: list[str], kind: str = "node"
) -> list[str]:
    """Trust the node (or, for a mirror, the hub) at `url` for `origin`'s records under these
    keys; returns the key ids. Repeating it changes nothing but the URL."""
    from federation import keys as keyring
    from federation.models import SINCE_EVER, Peer, PeerKey

    parsed = []
    for text in public_keys:
        try:
            raw = keyring.unb64(text.strip())
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise fail(f"--key {text[:16]}…: not a base64url Ed25519 public key (32 bytes)")
        parsed.append((keyring.key_id_of(raw), text.strip()))

    async def _enrol(session: AsyncSession) -> None:
        peer = await session.scalar(select(Peer).where(Peer.origin == origin))
        if peer is None:
            peer = Peer(origin=origin, kind=kind, base_url=url.rstrip("/"))
            session.add(peer)
            await session.flush()
        if peer.kind != kind:
            what = {"node": "an enrolled node", "hub": "a mirrored hub", "listed": "a node"}
            raise fail(
                f"{origin} is already known here as {what.get(peer.kind, peer.kind)}"
                + (" listed by the mirrored hub" if peer.kind == "listed" else "")
            )
        peer.base_url = url.rstrip("/")
        for key_id, public in parsed:
            if await session.get(PeerKey, key_id) is None:
                # Trusted for all it signed, also before enrolment: a node's feed has a past.
                session.add(
                    PeerKey(
                        key_id=key_id, peer_id=peer.id, public_key=public, valid_from=SINCE_EVER
                    )
                )
        audit.record(
            session,
            system_principal(console_actor()),
            action="enrol",
            entity_type="peer",
            entity_id=origin,
            detail={"url": url, "keys": [k for k, _ in parsed]},
        )

    run_in_session(_enrol, settings)
    return [key_id for key_id, _ in parsed]


@hub_app.command("revoke-key")
def hub_revoke_key(
    key_id: str,
    at: Annotated[
        datetime | None,
        typer.Option(
            help="Revoked from this UTC time (default: now). Entries it signed later are refused."
        ),
    ] = None,
) -> None:
    """Revoke a node's key: what it signed before stays trusted, anything later is refused."""
    from federation.models import PeerKey

    when = (at.replace(tzinfo=UTC) if at and at.tzinfo is None else at) or utcnow()

    async def _revoke(session: AsyncSession) -> None:
        key = await session.get(PeerKey, key_id)
        if key is None:
            raise fail(f"no enrolled key {key_id}")
        key.revoked_at = when
        audit.record(
            session,
            system_principal(console_actor()),
            action="revoke",
            entity_type="peer_key",
            entity_id=key_id,
            detail={"at": when.isoformat()},
        )

    run_in_session(_revoke)
    out.print(f"revoked {key_id} from {when:%Y-%m-%d %H:%M:%S} UTC")


@hub_app.command("sync")
def hub_sync() -> None:
    """Pull every due node's feed now, verify it and apply it. Safe to repeat: what is already
    held is not applied twice, and a failure only delays that node (with backoff)."""
    _sync_round()


def _sync_round() -> None:
    from federation.hub import Round

    results = sync_round(get_settings())
    failed = False
    for origin, result in sorted(results.items()):
        if isinstance(result, Round):
            out.print(
                f"{origin}: {result.applied} applied, {result.unchanged} unchanged, "
                f"{result.refused} refused"
            )
        else:
            failed = True
            err.print(f"{origin}: failed: {result}", highlight=False)
    if not results:
        out.print("nothing is due (see GET /api/v1/hub/peers)")
    if failed:
        raise typer.Exit(2)


def sync_round(settings: Settings) -> dict[str, "Round | str"]:
    """One round in this process: what each due peer gave, or why it failed."""
    from sqlalchemy.orm import Session

    from federation.hub import run_round
    from node.core.db import create_sync_engine
    from practices.search import make_backend

    migrations.upgrade(settings.sqlalchemy_url)
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


mirror_app = typer.Typer(
    help="Mirror the EU hub's aggregate feed, so this node's practitioners can search the EU "
    "pool even when the hub is down.",
    no_args_is_help=True,
)
app.add_typer(mirror_app, name="mirror")


@mirror_app.command("add")
def mirror_add(
    url: Annotated[str, typer.Option(help="The hub's base URL, e.g. https://hub.example.eu")],
    key: Annotated[
        list[str],
        typer.Option(
            help="A public key of the hub (as its `integra keys show` prints it); "
            "repeat for several. Exchange it out of band and compare fingerprints."
        ),
    ],
    origin: Annotated[str, typer.Option(help="The hub's origin code.")] = "EU",
) -> None:
    """Subscribe to a hub's aggregate feed. The hub's signed directory then tells which nodes'
    keys to check inside each relayed record; every record keeps its origin's signature."""
    from federation import keys as keyring

    origin = origin.upper()
    if len(origin) != 2 or not origin.isalpha():
        raise fail("--origin takes a two-letter code, e.g. EU")
    if not url.startswith(("http://", "https://")):
        raise fail("--url must start with http:// or https://")
    key_ids = enrol_peer(get_settings(), origin=origin, url=url, public_keys=key, kind="hub")
    out.print(f"mirroring the hub {origin} at {url}")
    for key_id in key_ids:
        out.print(f"  key {key_id}\n  fingerprint {keyring.fingerprint(key_id)}")


@mirror_app.command("sync")
def mirror_sync() -> None:
    """Pull the mirrored hub's feed now (a running node also does it on its own every
    INTEGRA_HUB_SYNC_INTERVAL). Safe to repeat."""
    _sync_round()


@app.command("demo")
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


def _load_json(source: str) -> Any:
    from federation.canonical import parse_strict

    if source.startswith(("http://", "https://")):
        import httpx

        response = httpx.get(source, timeout=30)
        response.raise_for_status()
        data = response.content
    else:
        data = Path(source).read_bytes()
    return parse_strict(data, max_bytes=64 * 1024 * 1024)


@app.command()
def verify(
    record: Annotated[
        str,
        typer.Argument(
            help="A file or URL: an envelope {payload, key, sig}, or a hub record carrying one."
        ),
    ],
    keys: Annotated[
        list[str],
        typer.Option(
            "--keys",
            help="A file or URL of a keys document "
            "(/federation/v1/keys of the origin, and of the hub "
            "for a hub's envelope); repeat for several.",
        ),
    ],
) -> None:
    """Check a record's envelope chain offline: who signed what, when, with which key."""
    from federation.canonical import CanonicalError
    from federation.verify import envelope_of, known_keys, verify_chain

    try:
        known = known_keys([_load_json(source) for source in keys])
        links = verify_chain(envelope_of(_load_json(record)), known)
    except (OSError, ValueError, CanonicalError) as exc:
        raise fail(str(exc)) from None
    for link in links:
        mark = "valid" if link.valid else f"INVALID: {link.reason}"
        out.print(
            f"{link.record}: signed by {link.signer} at {link.time} with {link.key_id} — {mark}",
            highlight=False,
        )
    if not links or not all(link.valid for link in links):
        raise typer.Exit(1)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")


def main() -> None:  # pragma: no cover - console entry point
    app()
