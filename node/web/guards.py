"""Who may open the working pages: signed-in users, editors and administrators.

A reader who is not signed in is sent to the sign-in page (and back afterwards); a signed-in
user without the role sees a page that says so (403), never the form. Administrators' pages
carry the size of the review queue in the header (`request.state.queue_size`).
"""

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from federation.models import GateHold
from node.core.auth import Principal, UserRole
from node.core.deps import SessionDep
from node.web.deps import WebPrincipal
from node.web.render import page


class SignInNeeded(Exception):
    """The page is for signed-in users: go to the sign-in page first."""


class NotAllowed(Exception):
    """The signed-in user may not open this page or change this record."""


async def queue_size(session: SessionDep) -> int:
    held = await session.scalar(
        select(func.count()).select_from(GateHold).where(GateHold.status == "held")
    )
    return int(held or 0)


async def signed_in(request: Request, session: SessionDep, by: WebPrincipal) -> Principal:
    """Any signed-in user (the queue's size shown to administrators)."""
    if not by.is_signed_in:
        raise SignInNeeded()
    if by.is_admin:
        request.state.queue_size = await queue_size(session)
    return by


async def staff(request: Request, session: SessionDep, by: WebPrincipal) -> Principal:
    """An editor or an administrator."""
    by = await signed_in(request, session, by)
    if by.role not in (UserRole.admin, UserRole.editor):
        raise NotAllowed()
    return by


async def admin(request: Request, session: SessionDep, by: WebPrincipal) -> Principal:
    by = await staff(request, session, by)
    if not by.is_admin:
        raise NotAllowed()
    return by


SignedIn = Annotated[Principal, Depends(signed_in)]
Staff = Annotated[Principal, Depends(staff)]
Admin = Annotated[Principal, Depends(admin)]


def install(web: FastAPI) -> None:
    """The answers to a page opened by someone who may not (see the module's docstring)."""

    @web.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, _exc: SignInNeeded) -> Response:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            here = "/"
        return RedirectResponse("/sign-in?" + urlencode({"next": here}), status_code=303)

    @web.exception_handler(NotAllowed)
    async def _not_allowed(request: Request, _exc: NotAllowed) -> Response:
        return page(request, "admin/not_allowed.html", {}, status_code=403)
