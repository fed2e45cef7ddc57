"""The kernel's account service, called in-process as the console and, later, the web UI do."""

import uuid
from collections.abc import Sequence

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from node.core import accounts
from node.core.auth import UserRole, system_principal
from node.core.errors import Conflict, NotFound
from node.core.models import AuditEntry

pytestmark = pytest.mark.anyio

BY = system_principal("cli:test")


async def no_organisations(session: AsyncSession, keys: Sequence[str]) -> list[uuid.UUID]:
    assert not keys, f"no organisation should be looked up, asked for {list(keys)}"
    return []


async def actions(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


async def test_organisations_are_for_editors_and_a_refusal_looks_nothing_up(
    session: AsyncSession,
) -> None:
    await accounts.create_user(
        session,
        email="np@example.org",
        name=None,
        role=UserRole.admin,
        password="a long enough password",
        organisations=[],
        find_organisations=no_organisations,
        by=BY,
    )
    with pytest.raises(accounts.NotAnEditor):
        await accounts.update_user(
            session,
            email="NP@example.org",
            role=None,
            active=None,
            organisations=["fr-dap"],
            find_organisations=no_organisations,
            by=BY,
        )
    with pytest.raises(Conflict, match="exists already"):
        await accounts.create_user(
            session,
            email="np@example.org",
            name="Again",
            role=UserRole.practitioner,
            password="a long enough password",
            organisations=[],
            find_organisations=no_organisations,
            by=BY,
        )
    assert await actions(session) == ["create"]


async def test_a_token_is_revoked_by_its_listed_prefix_or_whole_and_only_once(
    session: AsyncSession,
) -> None:
    await accounts.create_user(
        session,
        email="np@example.org",
        name="NP",
        role=UserRole.admin,
        password="a long enough password",
        organisations=[],
        find_organisations=no_organisations,
        by=BY,
    )
    first = await accounts.create_token(session, email="np@example.org", name="a", days=1, by=BY)
    second = await accounts.create_token(
        session, email="np@example.org", name="b", days=None, by=BY
    )
    revoked = await accounts.revoke_token(session, prefix=first, by=BY)
    assert revoked.prefix == first[:8]
    await accounts.revoke_token(session, prefix=second[:8], by=BY)
    with pytest.raises(NotFound, match=f"no active token matches {second[:8]}"):
        await accounts.revoke_token(session, prefix=second, by=BY)
    listed = await accounts.list_tokens(session, email="np@example.org")
    assert [t.revoked_at is not None for t in listed] == [True, True]
    assert await actions(session) == [
        "create",
        "token_issue",
        "token_issue",
        "token_revoke",
        "token_revoke",
    ]


def test_an_address_and_a_password_are_checked_as_the_console_says() -> None:
    assert accounts.normalised_email("NP@Example.org") == "np@example.org"
    with pytest.raises(Exception, match="'nobody' is not an e-mail address"):
        accounts.normalised_email("nobody")
    with pytest.raises(Exception, match="at least 12 characters"):
        accounts.check_password("short")
