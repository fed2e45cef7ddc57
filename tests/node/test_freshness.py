"""A kept answer's freshness read on the server's own connection (`node.core.freshness`).

The app here has its own database and engine, as a server process has (the `client` fixture's
sessions share one test connection, and go the pooled way): an anonymous reader's second
request is served from memory after one statement on that connection, and a change written by
another process (another worker, the CLI) is seen by the very next request."""

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Uuid, bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from node.app import create_app
from node.core.answers import Answers
from node.core.db import create_engine
from node.core.settings import Settings, async_url
from tests.conftest import Database
from tests.factories import create_organisation, make_user

pytestmark = pytest.mark.anyio


async def names(client: httpx.AsyncClient) -> list[str]:
    listed = await client.get("/api/v1/organisations", params={"limit": 50})
    assert listed.status_code == 200, listed.text
    return [item["name"] for item in listed.json()["items"]]


async def connections_to(engine: AsyncEngine, url: str) -> int:
    """How many connections PostgreSQL has open to the database at ``url``."""
    async with engine.connect() as connection:
        found = await connection.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"),
            {"name": url.rpartition("/")[2]},
        )
        return int(found.scalar_one())


async def test_a_kept_answer_is_served_after_one_read_and_never_after_another_process_wrote(
    database: Database, tmp_path: Path
) -> None:
    url = database.fresh_copy()
    app = create_app(Settings(database_url=url, data_dir=tmp_path))
    answers: Answers = app.state.answers
    other = create_engine(async_url(url))  # another worker process's pool, or the CLI's
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://node.test") as client:
            admin = await make_user(app.state.session_factory, "admin")
            org = await create_organisation(client, admin, name="Aa first")
            assert await names(client) == ["Aa first"]
            for _ in range(3):
                hits = answers.hits
                assert await names(client) == ["Aa first"]
                assert answers.hits == hits + 1  # from memory, after its one read

            async with other.begin() as connection:
                await connection.execute(
                    text("UPDATE organisation SET name = 'Ab renamed' WHERE id = :id").bindparams(
                        bindparam("id", type_=Uuid)
                    ),
                    {"id": uuid.UUID(org["id"])},
                )
            hits = answers.hits
            assert await names(client) == ["Ab renamed"]  # the very next request sees it
            assert answers.hits == hits
            assert await names(client) == ["Ab renamed"]
            assert answers.hits == hits + 1

            # Readers together, after another change: each sees it (on PostgreSQL their reads
            # share rounds on the one connection, each round begun after its readers came).
            async with other.begin() as connection:
                await connection.execute(
                    text("UPDATE organisation SET name = 'Ac again' WHERE id = :id").bindparams(
                        bindparam("id", type_=Uuid)
                    ),
                    {"id": uuid.UUID(org["id"])},
                )
            hits = answers.hits
            together = await asyncio.gather(*(names(client) for _ in range(8)))
            assert together == [["Ac again"]] * 8
            assert answers.hits == hits + 7  # one built it, seven were sent it from memory
            together = await asyncio.gather(*(names(client) for _ in range(8)))
            assert together == [["Ac again"]] * 8 and answers.hits == hits + 15

            if database.backend == "postgresql":
                assert await connections_to(other, url) >= 2  # the app's, and this one
    finally:
        await app.state.engine.dispose()
    if database.backend == "postgresql":
        # The freshness reader's connection went with the engine: only `other`'s is left (a
        # closed connection's server process leaves pg_stat_activity a moment after).
        deadline = time.monotonic() + 10
        while True:
            left = await connections_to(other, url)
            if left == 1 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert left == 1
    await other.dispose()
