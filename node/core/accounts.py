"""Local accounts and API tokens: create and change users, issue and revoke tokens.

The operator's console (`integra user`, `integra token`) is the caller today. Each change adds
its audit entry to the caller's transaction. Organisations belong to the registry, which the
kernel does not import: a caller that assigns them passes a function that turns the keys it
was given (refs or ids) into organisation ids.
"""

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from node.core import audit
from node.core.auth import Principal, UserRole, hash_password, hash_token, issue_token
from node.core.db import utcnow
from node.core.errors import AppError, Conflict, NotFound
from node.core.models import ApiToken, User, UserOrganisation

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


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AppError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")


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
    organisation_ids = await find_organisations(session, organisations)
    user = User(email=email, name=name or email, role=role, password_hash=hash_password(password))
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
    """A new token for an active user, returned in clear: the only time it is shown."""
    user = await session.scalar(select(User).where(User.email == email.lower()))
    if user is None or not user.is_active:
        raise NotFound(f"no active user with e-mail {email}")
    expires_at = utcnow() + timedelta(days=days) if days else None
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
