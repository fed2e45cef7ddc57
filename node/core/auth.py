"""Local accounts, API tokens and the caller's identity on each request."""

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from node.core.db import defer_write, utcnow
from node.core.deps import SessionDep
from node.core.errors import Forbidden, Unauthorized, raises
from node.core.models import ApiToken, User, UserOrganisation
from node.core.settings import get_settings

TOKEN_PREFIX = "ixt_"
# Recording every use would turn each read into a write; a few minutes is precise enough.
LAST_USED_RESOLUTION = timedelta(minutes=5)
_hasher = PasswordHasher()


class UserRole(StrEnum):
    admin = "admin"
    editor = "editor"
    practitioner = "practitioner"


@dataclass(frozen=True)
class Principal:
    """Who is calling. ``role`` is ``anonymous`` when nobody signed in."""

    role: str
    label: str
    user_id: uuid.UUID | None = None
    organisation_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)

    @property
    def is_signed_in(self) -> bool:
        return self.user_id is not None

    @property
    def is_admin(self) -> bool:
        return self.role == UserRole.admin

    def may_edit(self, organisation_id: uuid.UUID) -> bool:
        return self.is_admin or (
            self.role == UserRole.editor and organisation_id in self.organisation_ids
        )


ANONYMOUS = Principal(role="anonymous", label="anonymous")


def system_principal(label: str) -> Principal:
    """The operator at the node's own console (CLI): acts as admin, audited under ``label``."""
    return Principal(role=UserRole.admin, label=label)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify_or_pretend(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        verify_password(_dummy_hash(), password)  # the same work, its answer ignored
        return False
    return verify_password(password_hash, password)


async def password_matches(user: User | None, password: str) -> bool:
    """Whether ``password`` signs ``user`` in (an active account with this password). An
    unknown, inactive or passwordless account costs the same hash verification as a known one,
    so the time taken does not say which e-mails have accounts; the hashing runs in a worker
    thread, off the event loop."""
    usable = user is not None and user.is_active and bool(user.password_hash)
    stored = user.password_hash if usable and user is not None else None
    matches = await run_in_threadpool(_verify_or_pretend, stored, password)
    return usable and matches


async def hash_password_off_loop(password: str) -> str:
    """`hash_password` in a worker thread: a request's hashing does not stop the server."""
    return await run_in_threadpool(hash_password, password)


def hash_token(token: str) -> str:
    # Tokens are 256-bit random, so a keyed fast hash is enough; the key keeps a leaked
    # table useless without the node's secret.
    key = get_settings().secret_key.encode()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def issue_token(
    session: AsyncSession, *, user: User, name: str, expires_at: datetime | None
) -> str:
    """Store a new token for ``user`` and return it in clear: the only time it is shown."""
    token = new_token()
    session.add(
        ApiToken(
            user_id=user.id,
            name=name,
            token_hash=hash_token(token),
            prefix=token[: len(TOKEN_PREFIX) + 4],
            expires_at=expires_at,
        )
    )
    await session.flush()
    return token


async def principal_for_token(session: AsyncSession, token: str) -> Principal | None:
    # One statement: the token, its user and the user's organisations (a row each).
    rows = (
        await session.execute(
            select(
                ApiToken.id,
                ApiToken.revoked_at,
                ApiToken.expires_at,
                ApiToken.last_used_at,
                User.id,
                User.role,
                User.email,
                User.is_active,
                UserOrganisation.organisation_id,
            )
            .join(User, User.id == ApiToken.user_id)
            .outerjoin(UserOrganisation, UserOrganisation.user_id == User.id)
            .where(ApiToken.token_hash == hash_token(token))
        )
    ).all()
    if not rows:
        return None
    token_id, revoked_at, expires_at, last_used_at, user_id, role, email, is_active, _ = rows[0]
    now = utcnow()
    if not is_active or revoked_at is not None:
        return None
    if expires_at is not None and expires_at <= now:
        return None
    if last_used_at is None or now - last_used_at > LAST_USED_RESOLUTION:

        async def touch(writer: AsyncSession) -> None:
            await writer.execute(
                update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
            )

        if not defer_write(session, touch):
            await touch(session)
    organisations = frozenset(row[-1] for row in rows if row[-1] is not None)
    return Principal(role=role, label=email, user_id=user_id, organisation_ids=organisations)


async def principal_for_user(session: AsyncSession, user: User) -> Principal:
    org_ids = await session.scalars(
        select(UserOrganisation.organisation_id).where(UserOrganisation.user_id == user.id)
    )
    return Principal(
        role=user.role, label=user.email, user_id=user.id, organisation_ids=frozenset(org_ids)
    )


_bearer = HTTPBearer(auto_error=False, description="An API token (`ixt_…`)")


@raises(Unauthorized)
async def get_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        return ANONYMOUS
    principal = await principal_for_token(session, credentials.credentials)
    if principal is None:
        raise Unauthorized("The token is unknown, expired or revoked.")
    request.state.principal = principal
    return principal


@raises(Unauthorized)
async def require_user(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not principal.is_signed_in:
        raise Unauthorized("Sign in to see this.")
    return principal


@raises(Forbidden)
async def require_admin(principal: Annotated[Principal, Depends(require_user)]) -> Principal:
    if not principal.is_admin:
        raise Forbidden("Only the National Point's administrators may do this.")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
CurrentUser = Annotated[Principal, Depends(require_user)]
AdminUser = Annotated[Principal, Depends(require_admin)]
