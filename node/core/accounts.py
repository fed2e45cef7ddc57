"""Local accounts and API tokens: create and change users, issue and revoke tokens.

The operator's console (`integra user`, `integra token`) is the caller today. Each change adds
its audit entry to the caller's transaction. Organisations belong to the registry, which the
kernel does not import: a caller that assigns them passes a function that turns the keys it
was given (refs or ids) into organisation ids.
"""

import gzip
import math
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import structlog
from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from node.core import audit, outbox
from node.core.auth import (
    ANONYMOUS,
    Principal,
    UserRole,
    hash_password_off_loop,
    hash_token,
    issue_token,
    password_matches,
)
from node.core.db import utcnow
from node.core.errors import AppError, Conflict, NotFound
from node.core.models import ApiToken, PasswordReset, SignInAttempt, User, UserOrganisation
from node.core.settings import Settings, get_settings

MIN_PASSWORD_LENGTH = 12

# (session, keys as given) -> the organisations' ids, in the same order; refuses an unknown key.
OrganisationLookup = Callable[[AsyncSession, Sequence[str]], Awaitable[list[uuid.UUID]]]


class NotAnEditor(AppError):
    """Organisations were given for an account that is not an editor's."""

    def __init__(self) -> None:
        super().__init__("only an editor is assigned organisations")


def normalised_email(email: str) -> str:
    try:
        return TypeAdapter(EmailStr).validate_python(email).lower()
    except ValidationError:
        raise AppError(f"'{email}' is not an e-mail address") from None


def check_password(password: str, *, email: str | None = None) -> None:
    """Refuse a password that is short, common (or a common one with digits and signs around
    it), made of a few characters repeated, or built on the account's own e-mail."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AppError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    folded = password.casefold()
    if len(set(folded)) < MIN_DISTINCT_CHARACTERS:
        raise AppError("the password repeats too few characters: choose a longer phrase")
    core = folded.strip(_AROUND)
    if folded in common_passwords() or (len(core) >= 4 and core in common_passwords()):
        raise AppError("the password is one of the most common ones: choose another")
    if email:
        local = email.casefold().partition("@")[0]
        if email.casefold() in folded or (len(local) >= 4 and local in folded):
            raise AppError("the password contains the account's e-mail address: choose another")


MIN_DISTINCT_CHARACTERS = 5
# What people put around a common word to pass a length rule ("password2024!").
_AROUND = "0123456789!@#$%^&*()_+-=.,;:?~ "
COMMON_PASSWORDS = Path(__file__).with_name("common-passwords.txt.gz")


@cache
def common_passwords() -> frozenset[str]:
    """The 20,000 most common passwords (see common-passwords.LICENSE), lowercased."""
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    name: str | None,
    role: UserRole,
    password: str,
    organisations: Sequence[str],
    find_organisations: OrganisationLookup,
    by: Principal,
) -> User:
    """A new account (``email`` already normalised); an editor's organisations by ref or id."""
    if organisations and role is not UserRole.editor:
        raise NotAnEditor()
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"a user with e-mail {email} exists already")
    check_password(password, email=email)
    organisation_ids = await find_organisations(session, organisations)
    password_hash = await hash_password_off_loop(password)
    user = User(email=email, name=name or email, role=role, password_hash=password_hash)
    session.add(user)
    await session.flush()
    for organisation_id in organisation_ids:
        session.add(UserOrganisation(user_id=user.id, organisation_id=organisation_id))
    audit.record(
        session,
        by,
        action="create",
        entity_type="user",
        entity_id=user.id,
        detail={"role": str(role), "organisations": [str(o) for o in organisation_ids]},
    )
    return user


async def list_users(session: AsyncSession) -> Sequence[User]:
    """Every account, by e-mail."""
    return (await session.scalars(select(User).order_by(User.email))).all()


async def update_user(
    session: AsyncSession,
    *,
    email: str,
    role: UserRole | None,
    active: bool | None,
    organisations: Sequence[str],
    find_organisations: OrganisationLookup,
    by: Principal,
) -> None:
    """Change what is given; organisations, when given, replace an editor's. Audited if any
    change is real."""
    user = await session.scalar(select(User).where(User.email == email.lower()))
    if user is None:
        raise NotFound(f"no user with e-mail {email}")
    changes: dict[str, Any] = {}
    if role is not None and role != user.role:
        user.role = role
        changes["role"] = str(role)
    if active is not None and active != user.is_active:
        user.is_active = active
        changes["active"] = active
        if not active:  # its tokens stay dead should the account be reactivated
            revoked = await session.execute(
                update(ApiToken)
                .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            changes["tokens_revoked"] = revoked.rowcount  # type: ignore[attr-defined]
    if organisations:
        if (role or user.role) != UserRole.editor:
            raise NotAnEditor()
        organisation_ids = await find_organisations(session, organisations)
        await session.execute(delete(UserOrganisation).where(UserOrganisation.user_id == user.id))
        for organisation_id in organisation_ids:
            session.add(UserOrganisation(user_id=user.id, organisation_id=organisation_id))
        changes["organisations"] = [str(o) for o in organisation_ids]
    if changes:
        user.updated_at = utcnow()
        audit.record(
            session, by, action="update", entity_type="user", entity_id=user.id, detail=changes
        )


async def create_token(
    session: AsyncSession, *, email: str, name: str, days: int | None, by: Principal
) -> str:
    """A new token for an active user, returned in clear: the only time it is shown. It
    expires after ``days``, or after the node's default lifetime (`api_token_ttl`)."""
    user = await session.scalar(select(User).where(User.email == email.lower()))
    if user is None or not user.is_active:
        raise NotFound(f"no active user with e-mail {email}")
    lifetime = timedelta(days=days) if days else get_settings().api_token_ttl
    expires_at = utcnow() + lifetime
    token = await issue_token(session, user=user, name=name, expires_at=expires_at)
    audit.record(
        session,
        by,
        action="token_issue",
        entity_type="user",
        entity_id=user.id,
        detail={"token": token[:8], "name": name},
    )
    return token


async def list_tokens(session: AsyncSession, *, email: str) -> Sequence[ApiToken]:
    """A user's tokens, oldest first."""
    user = await session.scalar(select(User).where(User.email == email.lower()))
    if user is None:
        raise NotFound(f"no user with e-mail {email}")
    tokens = await session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at)
    )
    return tokens.all()


async def revoke_token(session: AsyncSession, *, prefix: str, by: Principal) -> ApiToken:
    """Revoke the one active token that is ``prefix`` whole, or starts with its first eight
    characters (as listed)."""
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
        raise NotFound(f"no active token matches {prefix[:8]}")
    if len(matches) > 1:
        raise Conflict(f"{len(matches)} tokens start with {prefix[:8]}: give the whole token")
    token = matches[0]
    token.revoked_at = utcnow()
    audit.record(
        session,
        by,
        action="token_revoke",
        entity_type="user",
        entity_id=token.user_id,
        detail={"token": token.prefix},
    )
    return token


# --- the web's account pages: passwords, one's own tokens, reset links --------------------

RESET_LINK_TTL = timedelta(hours=24)


async def change_password(
    session: AsyncSession, *, user_id: uuid.UUID, current: str, new: str, by: Principal
) -> None:
    """A signed-in user's new password, given the current one. Audited (never the password)."""
    user = await session.get(User, user_id)
    if user is None or not await password_matches(user, current):
        raise AppError("the current password is wrong")
    check_password(new, email=user.email)
    user.password_hash = await hash_password_off_loop(new)
    user.updated_at = utcnow()
    audit.record(session, by, action="password_change", entity_type="user", entity_id=user.id)


async def own_tokens(session: AsyncSession, *, user_id: uuid.UUID) -> Sequence[ApiToken]:
    """A user's tokens still in use (neither revoked nor expired), newest first."""
    now = utcnow()
    rows = await session.scalars(
        select(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.created_at.desc())
    )
    return [t for t in rows if t.expires_at is None or t.expires_at > now]


async def revoke_own_token(
    session: AsyncSession, *, token_id: uuid.UUID, by: Principal
) -> ApiToken:
    """Revoke one of the caller's own tokens (another user's is not found)."""
    token = await session.get(ApiToken, token_id)
    if token is None or token.user_id != by.user_id or token.revoked_at is not None:
        raise NotFound("no such token of yours in use")
    token.revoked_at = utcnow()
    audit.record(
        session,
        by,
        action="token_revoke",
        entity_type="user",
        entity_id=token.user_id,
        detail={"token": token.prefix},
    )
    return token


async def issue_reset_link(
    session: AsyncSession, *, user_id: uuid.UUID, ttl: timedelta = RESET_LINK_TTL, by: Principal
) -> tuple[User, str]:
    """A one-time password-reset token for an active user, returned in clear (the only time it
    is shown); only its hash is stored. Earlier unused links of the user stop working."""
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise NotFound("no active user with this id")
    now = utcnow()
    await session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        PasswordReset(
            user_id=user.id,
            token_hash=hash_token(token),
            created_by=by.label,
            expires_at=now + ttl,
        )
    )
    audit.record(
        session,
        by,
        action="reset_link_issue",
        entity_type="user",
        entity_id=user.id,
        detail={"expires_at": (now + ttl).isoformat()},
    )
    return user, token


async def reset_link_user(session: AsyncSession, token: str) -> User | None:
    """The active user a reset token is for, while it is unused and unexpired."""
    link = await session.scalar(
        select(PasswordReset).where(PasswordReset.token_hash == hash_token(token))
    )
    if link is None or link.used_at is not None or link.expires_at <= utcnow():
        return None
    user = await session.get(User, link.user_id)
    return user if user is not None and user.is_active else None


async def reset_password(session: AsyncSession, *, token: str, password: str) -> User:
    """Set a new password through a reset link, once: the link is spent and the user's tokens
    (sessions included) are revoked. Audited as the user."""
    link = await session.scalar(
        select(PasswordReset)
        .where(PasswordReset.token_hash == hash_token(token), PasswordReset.used_at.is_(None))
        .with_for_update()
    )
    user = await reset_link_user(session, token) if link is not None else None
    if link is None or user is None:
        raise NotFound("this link is unknown, used or expired: ask an administrator for a new one")
    check_password(password, email=user.email)
    now = utcnow()
    link.used_at = now
    user.password_hash = await hash_password_off_loop(password)
    user.updated_at = now
    await session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    audit.record(
        session,
        Principal(role=user.role, label=user.email, user_id=user.id),
        action="password_reset",
        entity_type="user",
        entity_id=user.id,
    )
    return user


# --- signing in: one rule for the API and the web, throttled per account and per address -----


class TooManyAttempts(AppError):
    """Too many sign-ins from this address, or failed ones for this account, in the window."""

    status_code = 429
    error = "Too many requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many sign-in attempts: try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after


async def sign_in(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    address: str | None,
    settings: Settings,
    via: str = "api",
) -> User | None:
    """The active account ``email`` and ``password`` sign in, or None. Throttled first (a
    `TooManyAttempts` costs no hashing): per account, failures in `sign_in_window`; per source
    address, failures and all attempts. Every attempt is counted and a failure audited with its
    address in the caller's transaction, so the caller answers a failure without raising (a
    raise would roll them back). An unknown account takes as long as a known one."""
    account, where = email.strip().lower()[:320], (address or "unknown")[:64]
    await _throttle(session, account, where, settings)
    user = await session.scalar(select(User).where(User.email == account))
    matches = await password_matches(user, password)
    session.add(SignInAttempt(account=account, address=where, succeeded=matches))
    if matches:
        return user
    detail: dict[str, Any] = {"address": where, "via": via}
    if user is not None and not user.is_active:
        detail["reason"] = "inactive"
    audit.record(
        session,
        ANONYMOUS,
        action="login_failed",
        entity_type="user",
        entity_id=user.id if user is not None else None,
        detail=detail,
    )
    structlog.get_logger().warning("sign_in_failed", address=where, known=user is not None)
    return None


async def _throttle(session: AsyncSession, account: str, address: str, settings: Settings) -> None:
    now = utcnow()
    since = now - settings.sign_in_window
    failed = ~SignInAttempt.succeeded
    recent = SignInAttempt.at > since
    counts = [
        (SignInAttempt.account == account, failed, settings.sign_in_account_failures),
        (SignInAttempt.address == address, failed, settings.sign_in_address_failures),
        (SignInAttempt.address == address, None, settings.sign_in_address_attempts),
    ]
    for who, which, limit in counts:
        stmt = select(func.count(), func.min(SignInAttempt.at)).where(who, recent)
        if which is not None:
            stmt = stmt.where(which)
        found, oldest = (await session.execute(stmt)).one()
        if found >= limit:
            wait = (oldest + settings.sign_in_window - now).total_seconds() if oldest else 1
            raise TooManyAttempts(max(1, math.ceil(wait)))


@outbox.on_sweep
def _forget_old_attempts(session: Session, context: outbox.JobContext) -> None:
    """Attempts older than the window count for nothing: kept a day, for the curious."""
    session.execute(delete(SignInAttempt).where(SignInAttempt.at < utcnow() - ATTEMPTS_KEPT))


ATTEMPTS_KEPT = timedelta(days=1)
