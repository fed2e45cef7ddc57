"""The node's own routes: sign-in, the caller's identity, the audit log, health."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, EmailStr, Field
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from federation.needs import router as hub_needs_router
from node import migrations, readiness
from node.core import accounts, audit
from node.core.auth import AdminUser, CurrentUser, issue_token, principal_for_user
from node.core.db import utcnow
from node.core.deps import SessionDep, SettingsDep
from node.core.errors import Unauthorized, responses
from practices.needs.api import router as needs_router

router = APIRouter(prefix="/api/v1")
AuditText = Annotated[str, Query(max_length=320, pattern=r"^[^\x00-\x1f]*$")]
health = APIRouter(tags=["health"])


class Login(BaseModel):
    email: EmailStr
    password: Annotated[str, Field(min_length=1, max_length=1000)]


class IssuedToken(BaseModel):
    token: str = Field(description="Send as `Authorization: Bearer <token>`. Shown only once.")
    expires_at: datetime | None


class Me(BaseModel):
    id: uuid.UUID | None
    email: str
    role: str
    organisation_ids: list[uuid.UUID]


class AuditEntryRead(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_id: uuid.UUID | None
    action: str
    entity_type: str
    entity_id: str | None
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntryRead]
    next_cursor: str | None


@router.post(
    "/auth/token",
    response_model=IssuedToken,
    tags=["auth"],
    responses=responses(Unauthorized, accounts.TooManyAttempts),
)
async def login(
    data: Login, request: Request, session: SessionDep, settings: SettingsDep
) -> IssuedToken | JSONResponse:
    """Exchange an e-mail and password for a bearer token that expires. Throttled per account
    and per address (429 with `Retry-After`); a failure is audited with its address."""
    address = request.client.host if request.client else None
    user = await accounts.sign_in(
        session, email=data.email, password=data.password, address=address, settings=settings
    )
    if user is None:  # answered, not raised: the failure's audit entry is kept
        body = {"error": Unauthorized.error, "detail": "Unknown e-mail or wrong password."}
        return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    expires_at = utcnow() + settings.login_token_ttl
    token = await issue_token(session, user=user, name="login", expires_at=expires_at)
    audit.record(
        session,
        await principal_for_user(session, user),
        action="login",
        entity_type="user",
        entity_id=user.id,
        detail={"token": token[:8], "address": address},
    )
    return IssuedToken(token=token, expires_at=expires_at)


@router.get("/users/me", response_model=Me, tags=["auth"], responses=responses(Unauthorized))
async def me(by: CurrentUser) -> Me:
    return Me(
        id=by.user_id, email=by.label, role=by.role, organisation_ids=sorted(by.organisation_ids)
    )


@router.get("/audit-log", response_model=AuditPage, tags=["audit"])
async def audit_log(
    session: SessionDep,
    _admin: AdminUser,
    entity_type: AuditText | None = None,
    entity_id: AuditText | None = None,
    action: AuditText | None = None,
    actor: AuditText | None = None,
    cursor: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """Every write, and every read of a contact point, newest first (administrators)."""
    rows = await audit.list_entries(
        session,
        after_id=cursor,
        limit=limit + 1,
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        actor=actor,
    )
    items = [AuditEntryRead.model_validate(r, from_attributes=True) for r in rows[:limit]]
    return AuditPage(
        items=items, next_cursor=str(rows[limit - 1].id) if len(rows) > limit else None
    )


@health.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


class Liveness:
    """ASGI middleware: `GET /healthz` answered before routing, with the bytes and headers its
    route gives (the route stays, for the API document and any other method). A liveness
    probe is asked every few seconds by every load balancer and supervisor in front of the
    node: it costs what a bare app's answer costs, and still passes the outer layers (the
    request id, the surface headers, CORS, the metrics and the access log, under the route's
    name)."""

    BODY = b'{"status":"ok"}'
    HEADERS = [(b"content-length", b"15"), (b"content-type", b"application/json")]

    def __init__(self, app: ASGIApp, route: BaseRoute) -> None:
        self.app, self.route = app, route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/healthz" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route  # the metrics and the access log name the route
        await send({"type": "http.response.start", "status": 200, "headers": self.HEADERS})
        await send({"type": "http.response.body", "body": self.BODY})


def liveness_route() -> BaseRoute:
    """The `/healthz` route, for `Liveness` to name."""
    return next(r for r in health.routes if getattr(r, "path", None) == "/healthz")


PACKAGE = "integra-exchange"


def package_version() -> str:
    """The installed package's version (`integra --version` prints the same)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class VersionInfo(BaseModel):
    name: str = Field(description="the package")
    version: str = Field(description="its version")
    schema_revision: str | None = Field(description="the newest migration this code expects")
    role: str = Field(description="`node` or `hub`")


@health.get("/api/v1/version", response_model=VersionInfo)
async def version_info(settings: SettingsDep) -> VersionInfo:
    """The program's version, the database schema it expects, and its role (anonymous)."""
    return VersionInfo(
        name=PACKAGE,
        version=package_version(),
        schema_revision=migrations.head_revision(),
        role=settings.role.value,
    )


@health.get(
    "/readyz", response_model=readiness.Readiness, responses={503: {"model": readiness.NotReady}}
)
async def readyz(request: Request) -> JSONResponse:
    """Each part the node needs, named with its state: the database and its schema, the broker
    and a live worker (with a broker), the search backend, the signing key (when the node
    federates), failed outbox work, and on a hub its peers. 503 when any fails."""
    ready = await readiness.check_all(request.app)
    if ready.status == "ready":
        return JSONResponse(ready.model_dump())
    detail = readiness.failures(ready)
    body = readiness.NotReady(error="Not ready", detail=detail, **ready.model_dump())
    return JSONResponse(body.model_dump(), 503)


# Needs heard (issue 17 item 5): a node's needs, and the hub's view of every node's counts.
router.include_router(needs_router)
router.include_router(hub_needs_router)
