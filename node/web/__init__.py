"""The HTML interface: one sub-app, mounted at `/` by `node.app` after every JSON route.

Server-rendered pages (Jinja2, autoescaping on) that htmx enhances; htmx, the style sheet and
Swagger UI's assets are files of this package, so nothing loads from another site. The pages
share the app's state (database sessions, search index, settings) and call the domains'
services in-process. Every POST carries a CSRF token; the reader's language comes from a
cookie the switcher sets, else from `Accept-Language`.

Adding a page: a route in the area's module (`search.py`, `records.py`, `account.py`, …)
that takes `WebPrincipal` (so the header knows who reads) and returns
`render.page(request, "area/name.html", context)`; the template extends `base.html`. Every
string goes through `_()` (templates) or `N_()` (Python, translated where shown) and into the
five catalogues (`babel.cfg` says how); a vocabulary code is shown with `vocab(Enum, code)`.
A form carries `<input type="hidden" name="csrf_token" value="{{ csrf_token }}">`. Then add
the page to a journey in `tests/web/test_browser.py`, through `look()` (tests/web/conftest.py).
"""

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import State
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from node.core.errors import AppError
from node.web import (
    account,
    accounts,
    admin,
    directory,
    editing,
    followup,
    guards,
    hubops,
    needs,
    pool,
    records,
    registry_contacts,
    registry_edit,
    search,
    visit_form,
    visits,
)
from node.web.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    CsrfRefused,
    check_csrf,
    csrf_seed,
    is_secure,
)
from node.web.i18n import N_
from node.web.render import page

STATIC = Path(__file__).parent / "static"
# Pages load scripts, styles and images from this site only, and no other site may frame them.
POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
DOCS_PAGE = (STATIC / "docs.html").read_text(encoding="utf-8")
ERROR_TITLES = {
    403: N_("This form has expired"),
    404: N_("Page not found"),
    400: N_("This request cannot be read"),
}


def create_web(state: State) -> FastAPI:
    """The web sub-app, sharing `state` with the app that mounts it."""
    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    web.state = state
    csrf = [Depends(check_csrf)]
    web.include_router(search.router, dependencies=csrf)
    # Before the record pages: /practices/new and /study-visits/new are forms, not ids.
    web.include_router(editing.router, dependencies=csrf)
    web.include_router(visit_form.router, dependencies=csrf)
    web.include_router(records.router, dependencies=csrf)
    web.include_router(directory.router, dependencies=csrf)
    web.include_router(visits.router, dependencies=csrf)
    web.include_router(followup.router, dependencies=csrf)
    web.include_router(pool.router, dependencies=csrf)
    web.include_router(account.router, dependencies=csrf)
    web.include_router(registry_edit.router, dependencies=csrf)
    web.include_router(registry_contacts.router, dependencies=csrf)
    web.include_router(admin.router, dependencies=csrf)
    web.include_router(hubops.router, dependencies=csrf)
    web.include_router(accounts.router, dependencies=csrf)
    web.include_router(needs.router, dependencies=csrf)
    guards.install(web)
    web.mount("/static", StaticFiles(directory=STATIC), name="static")
    web.get("/docs", include_in_schema=False)(_docs)
    web.middleware("http")(_cookies_and_headers)
    web.add_middleware(GZipMiddleware, minimum_size=1000)  # pages, htmx and Swagger UI
    _install_errors(web)
    return web


async def _docs() -> HTMLResponse:
    """The API's documentation with Swagger UI's own files, so it works with no internet: our
    own page around it (language, title) and a style sheet that brings its
    colours to WCAG AA contrast (`static/docs.css`, `static/docs.js`)."""
    return HTMLResponse(DOCS_PAGE)


async def _cookies_and_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    seed = getattr(request.state, "csrf_seed", None)
    if seed is not None and request.cookies.get(CSRF_COOKIE) != seed:
        response.set_cookie(
            CSRF_COOKIE, seed, httponly=True, samesite="lax", secure=is_secure(request), path="/"
        )
    if getattr(request.state, "drop_session", False):
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    if request.url.path != "/docs" and not request.url.path.startswith("/static/"):
        response.headers.setdefault("Content-Security-Policy", POLICY)
        response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers["Vary"] = "HX-Request, Cookie, Accept-Language"
    return response


def _error_page(request: Request, status: int, detail: str) -> Response:
    if request.url.path.startswith("/api/"):
        # An API path nobody serves: the API's JSON error, not a page.
        return JSONResponse({"error": HTTPStatus(status).phrase, "detail": detail}, status)
    csrf_seed(request)  # a fresh form token, so the next form sent works
    title = ERROR_TITLES.get(status, N_("Something went wrong"))
    return page(request, "error.html", {"status": status, "title": title}, status_code=status)


def _install_errors(web: FastAPI) -> None:
    @web.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _exc: CsrfRefused) -> Response:
        return _error_page(request, 403, "The form carried no valid CSRF token.")

    @web.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        return _error_page(request, exc.status_code, str(exc))

    @web.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return _error_page(request, exc.status_code, str(exc.detail))

    @web.exception_handler(RequestValidationError)
    async def _invalid(request: Request, _exc: RequestValidationError) -> Response:
        return _error_page(request, 400, "The request's fields cannot be read.")
