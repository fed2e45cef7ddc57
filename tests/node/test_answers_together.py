"""Kept answers under a crowd (`node.core.answers.KeptRoutes`): readers who ask at once for an
answer not kept yet (a popular search just after a change or a start) have it built once, and
each gets it whole. The app here has its own database and engine, as a server has, so that
the requests really run side by side."""

import asyncio
from pathlib import Path

import httpx
import pytest

from node.app import create_app
from node.core.answers import Answers
from node.core.settings import Settings
from tests.conftest import Database

pytestmark = pytest.mark.anyio


async def test_readers_asking_together_for_an_answer_not_kept_yet_have_it_built_once(
    database: Database, tmp_path: Path
) -> None:
    app = create_app(Settings(database_url=database.fresh_copy(), data_dir=tmp_path))
    answers: Answers = app.state.answers
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://node.test") as client:
            together = await asyncio.gather(
                *(
                    client.get(
                        "/api/v1/practices/search",
                        params={"q": "together"},
                        headers={"X-Request-ID": f"reader-{n}"},
                    )
                    for n in range(8)
                )
            )
    finally:
        await app.state.engine.dispose()
    assert [a.status_code for a in together] == [200] * 8
    assert len({a.content for a in together}) == 1 and together[0].json()["items"] == []
    assert [a.headers["x-request-id"] for a in together] == [f"reader-{n}" for n in range(8)]
    # One reader's request built it; the seven others waited for it and were sent it.
    assert (answers.misses, answers.hits) == (1, 7)
