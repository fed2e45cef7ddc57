"""What a request may cost: a body over the limit is refused before it is read, and outbox work
(the gate's scan of a long record, the feed's signature) runs off the event loop, so the server
keeps answering meanwhile."""

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from federation import feed, keys
from federation.models import NodeKey
from node.app import create_app
from node.core import outbox
from node.core.settings import Settings
from practices import PRACTICE_CHANGED
from tests.conftest import Database
from tests.factories import CONFIRMED, make_user, practice

pytestmark = pytest.mark.anyio
LIMIT = 64 * 1024


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    return Settings(database_url=database.url, data_dir=tmp_path, request_body_max=LIMIT)


LOGIN = "/api/v1/auth/token"


async def test_a_body_declared_too_large_is_refused_with_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        LOGIN, content=b"{" + b" " * LIMIT + b"}", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {
        "error": "Request body too large",
        "detail": f"the request body is larger than {LIMIT} bytes",
    }


async def test_a_chunked_body_is_cut_off_at_the_limit_not_read_to_its_end(
    client: httpx.AsyncClient,
) -> None:
    """No Content-Length: the body is refused once it passes the limit, and what the client
    would have sent after that is never asked for (here, 100 MB)."""
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100 * 1024):
            sent += 1024
            yield b" " * 1024

    response = await client.post(
        LOGIN, content=endless(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "Request body too large"
    assert sent <= LIMIT + 2 * 1024


async def test_a_body_within_the_limit_reaches_the_route(client: httpx.AsyncClient) -> None:
    """Read whole by the route: its fields are checked (a 422 naming the password)."""
    response = await client.post(
        LOGIN, json={"email": "nobody@example.org", "password": "x" * (LIMIT - 100)}
    )
    assert response.status_code == 422, response.text
    assert "password" in response.text


async def test_the_limit_is_a_setting(client: httpx.AsyncClient) -> None:
    body = {"email": "nobody@example.org", "password": "x" * (LIMIT + 1)}
    assert (await client.post(LOGIN, json=body)).status_code == 413
    with pytest.raises(ValueError):
        Settings(request_body_max=10)


async def test_the_server_answers_while_a_long_record_is_published(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded default: the publish's outbox work (projection, gate, signature) runs in a
    worker thread. A probe joins that work and holds it until /healthz has answered: if the
    work ran on the event loop, /healthz could not answer before the probe gave up."""
    settings = Settings(database_url=database.fresh_copy(), data_dir=tmp_path, country="PT")
    app = create_app(settings)  # its own engine, as `integra serve` has
    await _signing_key(app, settings)
    armed, working, released = threading.Event(), threading.Event(), threading.Event()
    outcome: list[bool] = []

    def probe(_session: Session, _entity: str, _context: Any) -> None:
        if armed.is_set() and not working.is_set():
            working.set()
            outcome.append(released.wait(timeout=30))

    monkeypatch.setitem(
        outbox.HANDLERS, PRACTICE_CHANGED, [*outbox.HANDLERS[PRACTICE_CHANGED], probe]
    )
    admin = await make_user(app.state.session_factory, "admin")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://node.test") as client:
        sentence = "Mentors meet released people every week and talk about work and housing."
        long_text = " ".join([sentence] * 300)
        created = await client.post(
            "/api/v1/practices", json=practice(summary=long_text[:19_000]), headers=admin
        )
        assert created.status_code == 201, created.text
        armed.set()
        publishing = asyncio.create_task(
            client.post(
                f"/api/v1/practices/{created.json()['id']}/publish",
                json=CONFIRMED,
                headers=admin | {"If-Match": created.headers["etag"]},
            )
        )
        started = await asyncio.to_thread(working.wait, 30)
        assert started, "the publish's outbox work never started"
        health = await client.get("/healthz")
        assert health.status_code == 200
        assert not publishing.done()  # the publish is still waiting for its outbox work
        released.set()
        published = await publishing
        assert published.status_code == 200, published.text
        assert outcome == [True]  # released by the test after /healthz, not by its timeout
        [entry] = (await client.get("/federation/v1/feed")).json()["entries"]
        assert entry["body"]["summary"] == long_text[:19_000]
    await app.state.engine.dispose()


async def _signing_key(app: Any, settings: Settings) -> None:
    key = keys.generate()
    keys.save(key, feed.key_path(settings, key.key_id))
    async with app.state.session_factory() as session:
        session.add(NodeKey(key_id=key.key_id, public_key=key.public_b64))
        await session.commit()
