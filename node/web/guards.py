"""Who may open the working pages: signed-in users, editors and administrators.

A reader who is not signed in is sent to the sign-in page (and back afterwards); a signed-in
user without the role sees a page that says so (403), never the form. Administrators see the
size of the review queue on every page (`deps.web_principal`).
"""

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from node.core.auth import Principal, UserRole
from node.web.deps import WebPrincipal
from node.web.render import page


class SignInNeeded(Exception):
    """The page is for signed-in users: go to the sign-in page first."""


class NotAllowed(Exception):
    """The signed-in user may not open this page or change this record."""


async def signed_in(by: WebPrincipal) -> Principal:
    """Any signed-in user."""
    if not by.is_signed_in:
        raise SignInNeeded()
    return by


async def staff(by: WebPrincipal) -> Principal:
    """An editor or an administrator."""
    by = await signed_in(by)
    if by.role not in (UserRole.admin, UserRole.editor):
        raise NotAllowed()
    return by


async def admin(by: WebPrincipal) -> Principal:
    by = await staff(by)
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
