"""The web reader: who is signed in (a cookie session), the CSRF token of their forms.

A session is an API token of the user's (`name = "web"`, the login lifetime), kept in an
HttpOnly cookie: signing out revokes it, and the roles are the API's. The CSRF token is a
signed double submit: a random cookie, and in every form the HMAC of it under the node's
secret; a POST whose form does not carry the HMAC of its cookie is refused.
"""

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from federation.models import GateHold
from node.core.auth import ANONYMOUS, Principal, hash_token, principal_for_token
from node.core.db import utcnow
from node.core.deps import SessionDep
from node.core.models import ApiToken

SESSION_COOKIE = "integra_session"
CSRF_COOKIE = "integra_csrf"
CSRF_FIELD = "csrf_token"


class CsrfRefused(Exception):
    """A form came without the token of the page that showed it."""


def is_secure(request: Request) -> bool:
    """Behind TLS (directly, or a proxy that says so and uvicorn trusts)."""
    return request.url.scheme == "https"


def csrf_seed(request: Request) -> str:
    """The random half of the token: the cookie's, or a new one the response will set."""
    seed: str | None = getattr(request.state, "csrf_seed", None)
    if seed is None:
        seed = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        request.state.csrf_seed = seed
    return seed


def csrf_token(request: Request) -> str:
    key = request.app.state.settings.secret_key.encode()
    return hmac.new(key, b"csrf:" + csrf_seed(request).encode(), hashlib.sha256).hexdigest()


async def check_csrf(request: Request) -> None:
    """For every method but GET and HEAD: the form's token must match the cookie's."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    cookie = request.cookies.get(CSRF_COOKIE)
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if (
        not cookie
        or not isinstance(sent, str)
        or not hmac.compare_digest(sent, csrf_token(request))
    ):
        raise CsrfRefused()


async def queue_size(session: AsyncSession) -> int:
    """How many records the personal-data gate holds for an administrator's review."""
    held = await session.scalar(
        select(func.count()).select_from(GateHold).where(GateHold.status == "held")
    )
    return int(held or 0)


async def web_principal(request: Request, session: SessionDep) -> Principal:
    """The signed-in user of this browser, or the anonymous reader (an expired or revoked
    session reads as signed out). An administrator's every page shows the size of the review
    queue (`request.state.queue_size`)."""
    token = request.cookies.get(SESSION_COOKIE)
    principal = await principal_for_token(session, token) if token else None
    if token and principal is None:
        request.state.drop_session = True
    principal = principal or ANONYMOUS
    request.state.principal = principal
    if principal.is_admin:
        request.state.queue_size = await queue_size(session)
    return principal


async def end_session(session: SessionDep, token: str) -> None:
    await session.execute(
        update(ApiToken)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


WebPrincipal = Annotated[Principal, Depends(web_principal)]
