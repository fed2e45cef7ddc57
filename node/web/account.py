"""Sign-in and sign-out (a cookie session over an API token) and the language switcher."""

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from node.core import accounts, audit
from node.core.auth import issue_token, principal_for_user
from node.core.db import utcnow
from node.core.deps import SessionDep
from node.web import i18n
from node.web.deps import SESSION_COOKIE, WebPrincipal, end_session, is_secure
from node.web.render import page

router = APIRouter()
ONE_YEAR = 365 * 24 * 3600


def local_path(target: str | None) -> str:
    """Where to go back to: a path on this site, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, by: WebPrincipal, next: str = "/") -> HTMLResponse:
    return page(request, "account/sign_in.html", {"next": local_path(next), "failed": False})


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(
    request: Request,
    session: SessionDep,
    by: WebPrincipal,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    address = request.client.host if request.client else None
    try:  # throttled, and a failure audited, by the kernel's rule (the API's too)
        user = await accounts.sign_in(
            session,
            email=email,
            password=password,
            address=address,
            settings=request.app.state.settings,
            via="web",
        )
    except accounts.TooManyAttempts as refused:
        minutes = max(1, -(-refused.retry_after // 60))
        context = {"next": local_path(next), "throttled": minutes, "email": email}
        return page(request, "account/sign_in.html", context, status_code=429)
    if user is None:  # answered, not raised: the failure's audit entry is kept
        context = {"next": local_path(next), "failed": True, "email": email}
        return page(request, "account/sign_in.html", context, status_code=401)
    ttl = request.app.state.settings.login_token_ttl
    token = await issue_token(session, user=user, name="web", expires_at=utcnow() + ttl)
    audit.record(
        session,
        await principal_for_user(session, user),
        action="login",
        entity_type="user",
        entity_id=user.id,
        detail={"token": token[:8], "via": "web"},
    )
    response = RedirectResponse(local_path(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=is_secure(request),
        path="/",
    )
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: SessionDep, by: WebPrincipal) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await end_session(session, token)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/language/{code}")
async def choose_language(request: Request, code: str, next: str = "/") -> Response:
    """The switcher: remember the language in a cookie and go back to the page. The page's
    own address wins over `next` when it is the same page (htmx changed its query since the
    link was drawn: a search stays as it was)."""
    target = local_path(next)
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc == request.url.netloc and referer.path == urlsplit(target).path:
        target = local_path(referer.path + (f"?{referer.query}" if referer.query else ""))
    response = RedirectResponse(target, status_code=303)
    if code in i18n.LANGUAGES:
        response.set_cookie(
            i18n.COOKIE, code, max_age=ONE_YEAR, samesite="lax", secure=is_secure(request)
        )
    return response
