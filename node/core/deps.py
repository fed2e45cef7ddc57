"""Request-scoped dependencies shared by every domain's routes."""

import re
from collections.abc import AsyncIterator
from typing import Annotated

import structlog
from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from node.core.db import read_only, session_scope
from node.core.errors import InvalidInput, PreconditionFailed, PreconditionRequired, raises
from node.core.settings import Settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    # scope="function" below: the commit happens before the response is sent, so a client
    # never sees success for a write that failed to commit.
    factory = request.app.state.session_factory
    async with session_scope(factory) as session:
        if request.method in ("GET", "HEAD"):
            await read_only(session)
        yield session
    writes = session.info.pop("deferred_writes", [])
    if writes:  # e.g. the audit of what was read: stored before the answer leaves
        async with session_scope(factory) as writer:
            for write in writes:
                await write(writer)
    await _after_commit(request, session)


async def _after_commit(request: Request, session: AsyncSession) -> None:
    from node.core import outbox

    try:
        await outbox.after_commit(session, request.app.state.settings, request.app.state.jobs)
    except Exception:
        structlog.get_logger().exception("after_commit_failed")
        await session.rollback()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (not the environment's: a test or the demo may
    run several apps with different settings in one process)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


ETAG = re.compile(r"[0-9]{1,9}")


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str | None) -> int:
    """The version a writer last saw, from ``If-Match: "3"`` (weak ``W/"3"`` accepted)."""
    if value is None:
        raise PreconditionRequired(
            'Send the ETag you last read in an If-Match header (e.g. If-Match: "3"), so that '
            "your change cannot overwrite someone else's."
        )
    tag = value.strip().removeprefix("W/").strip('"')
    if not ETAG.fullmatch(tag):
        raise InvalidInput("If-Match", f"'{value[:40]}' is not an ETag this server issued")
    return int(tag)


@raises(PreconditionRequired, PreconditionFailed, InvalidInput)
async def _if_match(
    if_match: Annotated[
        str | None, Header(description='The ETag last read, e.g. "3". Required on writes.')
    ] = None,
) -> int:
    return parse_if_match(if_match)


IfMatch = Annotated[int, Depends(_if_match)]
