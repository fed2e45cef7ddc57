"""`integra user` and `integra token`: local accounts and their API tokens."""

import os
import sys
import uuid
from collections.abc import Sequence
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from node.console import err, fail, operator, out, refusals_fail, run_in_session, run_or_fail
from node.core import accounts
from node.core.auth import UserRole
from node.core.errors import NotFound
from node.core.models import UserOrganisation
from node.core.settings import PLACEHOLDER_SECRET, get_settings

user_app = typer.Typer(help="Local user accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)

EDITORS_ONLY = "--org is for editors: admins edit everything, practitioners nothing"
# `token list` shows 8 characters; a longer argument is taken for a whole token, refused.
PREFIX_MAX = 12
TOKEN_ENV = "INTEGRA_TOKEN"


async def find_organisations(session: AsyncSession, keys: Sequence[str]) -> list[uuid.UUID]:
    """The registry's organisations by ref or id, as `--org` names them."""
    if not keys:
        return []  # the registry (its models, schemas and services) is imported for `--org` only
    import registry

    found = []
    for key in keys:
        organisation = await registry.find_organisation_by_ref(session, key)
        if organisation is not None:
            found.append(organisation.id)
            continue
        try:
            organisation_id = uuid.UUID(key)
        except ValueError:
            organisation_id = None
        if organisation_id is None or not await registry.organisation_exists(
            session, organisation_id
        ):
            raise NotFound(f"--org {key}: no organisation with this ref or id")
        found.append(organisation_id)
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
    with refusals_fail():
        email = accounts.normalised_email(email)
    if org and role is not UserRole.editor:
        raise fail(EDITORS_ONLY)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with refusals_fail():
        accounts.check_password(password, email=email)

    async def _add(session: AsyncSession) -> None:
        await accounts.create_user(
            session,
            email=email,
            name=name,
            role=role,
            password=password,
            organisations=org,
            find_organisations=find_organisations,
            by=operator(),
        )

    with refusals_fail():
        try:
            run_in_session(_add)
        except accounts.NotAnEditor:
            raise fail(EDITORS_ONLY) from None
    out.print(f"added {role} {email}" + (f" (editor of {', '.join(org)})" if org else ""))


@user_app.command("list")
def user_list() -> None:
    """List accounts: e-mail, role, active, and the organisations an editor may edit."""
    from registry.models import Organisation

    async def _list(session: AsyncSession) -> list[str]:
        lines = []
        for user in await accounts.list_users(session):
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
        await accounts.update_user(
            session,
            email=email,
            role=role,
            active=active,
            organisations=org,
            find_organisations=find_organisations,
            by=operator(),
        )

    with refusals_fail():
        try:
            run_in_session(_set)
        except accounts.NotAnEditor:
            raise fail("--org is for editors") from None
    out.print(f"updated {email}")


@token_app.command("create")
def token_create(
    email: Annotated[str, typer.Argument(help="The user the token acts as.")],
    name: Annotated[str, typer.Option(help="What the token is for, e.g. 'nightly export'.")],
    days: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=3650,
            help="Expire after this many days (default: INTEGRA_API_TOKEN_TTL, 90 days).",
        ),
    ] = None,
) -> None:
    """Create an API token. It is printed once; only its hash is stored."""
    if get_settings().secret_key == PLACEHOLDER_SECRET:
        err.print("warning: INTEGRA_SECRET_KEY is the placeholder: this token is weakly kept")

    async def _create(session: AsyncSession) -> str:
        return await accounts.create_token(
            session, email=email, name=name, days=days, by=operator()
        )

    token = run_or_fail(_create)
    err.print("Store this token now; it cannot be shown again:")
    typer.echo(token)


@token_app.command("list")
def token_list(email: str) -> None:
    """A user's tokens: prefix, name, created, expires, last used, revoked."""

    async def _list(session: AsyncSession) -> list[str]:
        lines = []
        for t in await accounts.list_tokens(session, email=email):
            expiry = f"expires {t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "no expiry"
            revoked = "\trevoked" if t.revoked_at else ""
            lines.append(f"{t.prefix}\t{t.name}\t{t.created_at:%Y-%m-%d}\t{expiry}{revoked}")
        return lines

    for line in run_or_fail(_list):
        typer.echo(line)


@token_app.command("revoke")
def token_revoke(
    prefix: Annotated[
        str | None,
        typer.Argument(
            help="The token's first characters, as `token list` shows them (e.g. ixt_AbCd). "
            "A whole token is never an argument (shell history, the process list): give it "
            "on standard input with --stdin, or in INTEGRA_TOKEN."
        ),
    ] = None,
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the whole token from standard input.")
    ] = False,
) -> None:
    """Revoke a token at once. Safe to repeat."""
    if prefix is not None and len(prefix) > PREFIX_MAX:
        raise fail(
            f"give only the token's first characters (up to {PREFIX_MAX}); a whole token goes "
            "on standard input (--stdin) or in INTEGRA_TOKEN, never on the command line"
        )
    if stdin:
        prefix = sys.stdin.readline().strip()
    elif prefix is None:
        prefix = os.environ.get(TOKEN_ENV, "").strip()
    if not prefix:
        raise fail(f"name the token: its prefix, --stdin, or {TOKEN_ENV}")
    given: str = prefix

    async def _revoke(session: AsyncSession) -> None:
        await accounts.revoke_token(session, prefix=given, by=operator())

    run_or_fail(_revoke)
    out.print(f"revoked {given[:8]}")
