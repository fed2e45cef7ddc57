"""Accounts in the browser: administrators create, disable and assign users and issue
password-reset links; every user changes their password and revokes their own tokens.

The rules are the kernel's (`node.core.accounts`, the CLI's too). A reset link is a one-time
token of which only the hash is stored; the administrator hands the link over, or, when a mail
server is configured (`INTEGRA_SMTP_*`), it is mailed to the user as well.
"""

import secrets
import uuid
from collections.abc import Sequence
from typing import Any

import anyio
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from node.core import accounts
from node.core.auth import UserRole
from node.core.deps import SessionDep
from node.core.errors import AppError, NotFound
from node.core.mail import MailError, send_mail
from node.core.models import User, UserOrganisation
from node.core.settings import Settings
from node.web import forms, i18n
from node.web.deps import SESSION_COOKIE
from node.web.forms import Problem
from node.web.guards import Admin, SignedIn
from node.web.i18n import N_
from node.web.render import page
from registry.models import Organisation

router = APIRouter()
log = structlog.get_logger()
ROLES = [
    ("practitioner", N_("Practitioner (reads)")),
    ("editor", N_("Editor (keeps the records of their organisations)")),
    ("admin", N_("Administrator (the National Point)")),
]
USER_FIELDS = {
    "email": N_("E-mail"),
    "name": N_("Name"),
    "role": N_("Role"),
    "organisations": N_("Organisations"),
}


async def _organisations(session: AsyncSession) -> list[tuple[str, str]]:
    rows = await session.execute(
        select(Organisation.id, Organisation.name)
        .where(Organisation.status != "archived")
        .order_by(Organisation.name)
    )
    return [(str(row.id), row.name) for row in rows]


async def _find(session: AsyncSession, keys: Sequence[str]) -> list[uuid.UUID]:
    """The organisations the form ticked (their ids), each of which must exist."""
    ids = []
    for key in keys:
        try:
            ids.append(uuid.UUID(key))
        except ValueError:
            raise AppError("no such organisation") from None
    found = set(await session.scalars(select(Organisation.id).where(Organisation.id.in_(ids))))
    if set(ids) - found:
        raise AppError("no such organisation")
    return ids


async def _users(session: AsyncSession) -> list[dict[str, Any]]:
    users = await accounts.list_users(session)
    assigned: dict[uuid.UUID, list[str]] = {}
    rows = await session.execute(
        select(UserOrganisation.user_id, Organisation.name).join(
            Organisation, Organisation.id == UserOrganisation.organisation_id
        )
    )
    for user_id, name in rows:
        assigned.setdefault(user_id, []).append(name)
    return [{"user": u, "organisations": sorted(assigned.get(u.id, []))} for u in users]


async def _users_page(
    request: Request,
    session: AsyncSession,
    *,
    values: dict[str, Any] | None = None,
    problems: dict[str, Problem] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "users": await _users(session),
        "roles": ROLES,
        "organisations": await _organisations(session),
        "values": values or {"role": "editor", "organisations": []},
        "problems": problems or {},
        "labels": USER_FIELDS,
    }
    return page(request, "admin/users.html", context, status_code=status_code)


@router.get("/admin/users", response_class=HTMLResponse)
async def users_page(request: Request, session: SessionDep, by: Admin) -> HTMLResponse:
    return await _users_page(request, session)


def _refused(error: AppError) -> dict[str, Problem]:
    said = str(error)
    if "organisation" in said:
        return {"organisations": Problem(N_("Only an editor is assigned organisations."))}
    if "e-mail" in said and "exists already" in said:
        return {"email": Problem(N_("A user with this e-mail exists already."))}
    return forms.problem_of(error, "email")


@router.post("/admin/users", response_class=HTMLResponse)
async def create_user(request: Request, session: SessionDep, by: Admin) -> Response:
    form = await request.form()
    email, name = forms.text(form, "email") or "", forms.text(form, "name")
    role, chosen = forms.text(form, "role") or "", forms.chosen(form, "organisations")
    values = {"email": email, "name": name, "role": role, "organisations": chosen}
    problems: dict[str, Problem] = {}
    if role not in UserRole.__members__:
        problems["role"] = Problem(forms.BY_TYPE["enum"])
    if not problems:
        try:
            user = await accounts.create_user(
                session,
                email=accounts.normalised_email(email),
                name=name,
                role=UserRole(role),
                # No password yet: the user sets one through a reset link.
                password=secrets.token_urlsafe(32),
                organisations=chosen,
                find_organisations=_find,
                by=by,
            )
        except AppError as error:
            problems = _refused(error)
        else:
            return RedirectResponse(f"/admin/users/{user.id}?created=1", status_code=303)
    return await _users_page(request, session, values=values, problems=problems, status_code=422)


async def _user(session: AsyncSession, user_id: str) -> User:
    try:
        user = await session.get(User, uuid.UUID(user_id))
    except ValueError:
        user = None
    if user is None:
        raise NotFound(f"No user {user_id[:40]}.")
    return user


async def _user_page(
    request: Request,
    session: AsyncSession,
    user: User,
    *,
    problems: dict[str, Problem] | None = None,
    link: str | None = None,
    mailed: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    assigned = await session.scalars(
        select(UserOrganisation.organisation_id).where(UserOrganisation.user_id == user.id)
    )
    context = {
        "user": user,
        "roles": ROLES,
        "organisations": await _organisations(session),
        "assigned": {str(o) for o in assigned},
        "problems": problems or {},
        "labels": USER_FIELDS,
        "link": link,
        "mailed": mailed,
        "notice": notice,
    }
    return page(request, "admin/user.html", context, status_code=status_code)


@router.get("/admin/users/{user_id}", response_class=HTMLResponse)
async def user_page(
    request: Request, session: SessionDep, by: Admin, user_id: str, created: str = ""
) -> HTMLResponse:
    user = await _user(session, user_id)
    return await _user_page(request, session, user, notice="created" if created else None)


@router.post("/admin/users/{user_id}", response_class=HTMLResponse)
async def update_user(request: Request, session: SessionDep, by: Admin, user_id: str) -> Response:
    user = await _user(session, user_id)
    form = await request.form()
    role = forms.text(form, "role") or ""
    if role not in UserRole.__members__:
        problems = {"role": Problem(forms.BY_TYPE["enum"])}
        return await _user_page(request, session, user, problems=problems, status_code=422)
    if user.id == by.user_id and (role != user.role or not forms.ticked(form, "active")):
        problems = {"role": Problem(N_("You cannot take away your own administration."))}
        return await _user_page(request, session, user, problems=problems, status_code=422)
    try:
        await accounts.update_user(
            session,
            email=user.email,
            role=UserRole(role),
            active=forms.ticked(form, "active"),
            organisations=forms.chosen(form, "organisations") if role == "editor" else [],
            find_organisations=_find,
            by=by,
        )
    except AppError as error:
        return await _user_page(request, session, user, problems=_refused(error), status_code=422)
    if role != "editor":  # an editor's assignments go with the role
        await session.execute(delete(UserOrganisation).where(UserOrganisation.user_id == user.id))
    return RedirectResponse(f"/admin/users/{user.id}?saved=1", status_code=303)


@router.post("/admin/users/{user_id}/reset-link", response_class=HTMLResponse)
async def reset_link(request: Request, session: SessionDep, by: Admin, user_id: str) -> Response:
    user = await _user(session, user_id)
    user, token = await accounts.issue_reset_link(session, user_id=user.id, by=by)
    link = f"{str(request.base_url).rstrip('/')}/reset/{token}"
    settings: Settings = request.app.state.settings
    mailed = None
    if settings.smtp_host:
        gettext = i18n.gettext_for(i18n.language_of(request))
        subject = gettext("Set your Integra Exchange password")
        body = gettext(
            "An administrator of Integra Exchange issued a link for you to set a new password."
            " It works once, within 24 hours:"
        )
        try:
            await anyio.to_thread.run_sync(
                send_mail, settings, user.email, subject, f"{body}\n\n{link}\n"
            )
            mailed = "sent"
        except MailError as error:
            log.warning("reset_mail_failed", error=str(error)[:200])
            mailed = "failed"
    return await _user_page(request, session, user, link=link, mailed=mailed)


# --- one's own account ----------------------------------------------------------------------


async def _me_page(
    request: Request,
    session: AsyncSession,
    by: Any,
    *,
    problems: dict[str, Problem] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    tokens = await accounts.own_tokens(session, user_id=by.user_id)
    current = request.cookies.get(SESSION_COOKIE, "")[:8]
    context = {
        "tokens": tokens,
        "current": current,
        "problems": problems or {},
        "notice": notice,
    }
    return page(request, "admin/account.html", context, status_code=status_code)


@router.get("/account", response_class=HTMLResponse)
async def me(request: Request, session: SessionDep, by: SignedIn, done: str = "") -> HTMLResponse:
    return await _me_page(request, session, by, notice=done[:20] or None)


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(request: Request, session: SessionDep, by: SignedIn) -> Response:
    form = await request.form()
    current = str(form.get("current") or "")
    new, again = str(form.get("new") or ""), str(form.get("again") or "")
    if new != again:
        problems = {"again": Problem(N_("The two new passwords differ."))}
        return await _me_page(request, session, by, problems=problems, status_code=422)
    assert by.user_id is not None
    try:
        await accounts.change_password(session, user_id=by.user_id, current=current, new=new, by=by)
    except AppError as error:
        field = "current" if "current" in str(error) else "new"
        return await _me_page(
            request, session, by, problems=forms.problem_of(error, field), status_code=422
        )
    return RedirectResponse("/account?done=password", status_code=303)


@router.post("/account/tokens/{token_id}/revoke", response_class=HTMLResponse)
async def revoke_token(
    request: Request, session: SessionDep, by: SignedIn, token_id: str
) -> Response:
    try:
        parsed = uuid.UUID(token_id)
    except ValueError:
        raise NotFound("no such token of yours in use") from None
    await accounts.revoke_own_token(session, token_id=parsed, by=by)
    return RedirectResponse("/account?done=revoked", status_code=303)


# --- a reset link ---------------------------------------------------------------------------


@router.get("/reset/{token}", response_class=HTMLResponse)
async def reset_form(request: Request, session: SessionDep, token: str) -> HTMLResponse:
    user = await accounts.reset_link_user(session, token[:100])
    context = {"valid": user is not None, "email": user.email if user else "", "problems": {}}
    return page(request, "admin/reset.html", context, status_code=200 if user else 410)


@router.post("/reset/{token}", response_class=HTMLResponse)
async def reset(request: Request, session: SessionDep, token: str) -> Response:
    form = await request.form()
    new, again = str(form.get("new") or ""), str(form.get("again") or "")
    user = await accounts.reset_link_user(session, token[:100])
    context: dict[str, Any] = {"valid": user is not None, "email": user.email if user else ""}
    if user is None:
        return page(request, "admin/reset.html", context | {"problems": {}}, status_code=410)
    if new != again:
        problems = {"again": Problem(N_("The two new passwords differ."))}
        return page(request, "admin/reset.html", context | {"problems": problems}, status_code=422)
    try:
        await accounts.reset_password(session, token=token[:100], password=new)
    except AppError as error:
        problems = forms.problem_of(error, "new")
        return page(request, "admin/reset.html", context | {"problems": problems}, status_code=422)
    return page(request, "admin/reset.html", context | {"done": True, "problems": {}})
