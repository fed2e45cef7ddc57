"""Kept answers (`node.core.answers`): the organisation list and the practice search are
served again from memory while their tables are unchanged, and never once they have changed,
whoever changed them: the API, or a writer that goes straight to the database (the CLI, an
import, another worker process), which only the database's own change counters can tell."""

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation.models import FederatedRecord
from node.core.answers import Answers
from node.core.db import create_engine, session_factory
from tests.conftest import free_port
from tests.factories import (
    Headers,
    create_organisation,
    make_user,
    practice,
    publish_practice,
    search,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def admin(sessions: async_sessionmaker[AsyncSession]) -> Headers:
    return await make_user(sessions, "admin")


def kept(client: httpx.AsyncClient) -> Answers:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport) and isinstance(transport.app, FastAPI)
    answers: Answers = transport.app.state.answers
    return answers


async def direct(sessions: async_sessionmaker[AsyncSession], sql: str, **params: object) -> None:
    """A change written straight to the database, as another process would."""
    async with sessions() as session:
        await session.execute(text(sql), params)
        await session.commit()


async def counters(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        rows = await session.execute(text("SELECT name, value FROM change_counter"))
        return {name: int(value) for name, value in rows}


async def names(client: httpx.AsyncClient) -> list[str]:
    listed = await client.get("/api/v1/organisations", params={"limit": 50})
    assert listed.status_code == 200, listed.text
    return [item["name"] for item in listed.json()["items"]]


async def test_every_change_to_the_registry_or_the_practices_raises_its_counter(
    client: httpx.AsyncClient, admin: Headers, sessions: async_sessionmaker[AsyncSession]
) -> None:
    before = await counters(sessions)
    org = await create_organisation(client, admin, name="Counted service")
    after_insert = await counters(sessions)
    assert after_insert["registry"] > before["registry"]
    assert after_insert["practices"] == before["practices"]

    steps = [
        ("UPDATE organisation SET region = 'Crete' WHERE id = :id", "registry"),
        ("DELETE FROM organisation_term WHERE organisation_id = :id", "registry"),
        (
            "INSERT INTO organisation_identifier (organisation_id, scheme, value)"
            " VALUES (:id, 'GR-AFM', '090000045')",
            "registry",
        ),
        ("DELETE FROM organisation_identifier WHERE organisation_id = :id", "registry"),
    ]
    org_id = uuid.UUID(org["id"]).hex
    for sql, group in steps:
        was = await counters(sessions)
        await direct(sessions, sql, id=org_id)
        assert (await counters(sessions))[group] > was[group], sql

    was = await counters(sessions)
    published = await publish_practice(client, admin, title="Counted mentoring")
    assert (await counters(sessions))["practices"] > was["practices"]
    was = await counters(sessions)
    await direct(
        sessions, "UPDATE practice SET held = :held WHERE id = :id", held=True, id=_id(published)
    )
    assert (await counters(sessions))["practices"] > was["practices"]


async def test_every_change_to_the_eu_pool_raises_its_counter(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A record received, purged (a redaction) or removed: the EU search's next answer is
    built anew."""
    was = await counters(sessions)
    async with sessions() as session:
        session.add(
            FederatedRecord(
                record_id="PT:counted",
                origin="PT",
                record_type="practice",
                version=1,
                body_hash="h",
                envelope="{}",
                stored_body='{"title": "Counted"}',
                origin_seq=1,
            )
        )
        await session.commit()
    assert (await counters(sessions))["pool"] > was["pool"]
    for sql in (
        "UPDATE federated_record SET stored_body = NULL WHERE record_id = 'PT:counted'",
        "DELETE FROM federated_record WHERE record_id = 'PT:counted'",
    ):
        was = await counters(sessions)
        await direct(sessions, sql)
        assert (await counters(sessions))["pool"] > was["pool"], sql


def _id(record: dict[str, object]) -> str:
    """An id as the database stores it (SQLite: 32 hex digits; PostgreSQL reads either)."""
    return uuid.UUID(str(record["id"])).hex


async def test_the_organisation_list_is_kept_until_anyone_changes_the_registry(
    client: httpx.AsyncClient, admin: Headers, sessions: async_sessionmaker[AsyncSession]
) -> None:
    org = await create_organisation(client, admin, name="Aa first")
    assert await names(client) == ["Aa first"]
    hits = kept(client).hits
    assert await names(client) == ["Aa first"]
    assert kept(client).hits == hits + 1  # the second reader was answered from memory

    await create_organisation(client, admin, name="Ab second")  # through the API
    assert await names(client) == ["Aa first", "Ab second"]

    # Straight to the database, as `integra registry import` or another worker writes.
    await direct(
        sessions, "UPDATE organisation SET name = 'Ac renamed' WHERE id = :id", id=_id(org)
    )
    assert await names(client) == ["Ab second", "Ac renamed"]

    await direct(sessions, "DELETE FROM organisation_term WHERE organisation_id = :id", id=_id(org))
    listed = (await client.get("/api/v1/organisations", params={"limit": 50})).json()["items"]
    assert [i["areas"] for i in listed if i["id"] == org["id"]] == [[]]


async def test_a_kept_search_never_shows_a_practice_that_was_held_or_changed_since(
    client: httpx.AsyncClient, admin: Headers, sessions: async_sessionmaker[AsyncSession]
) -> None:
    tool = await publish_practice(client, admin, title="Wayfinder mentoring")
    found = await search(client, q="wayfinder")
    assert [i["id"] for i in found["items"]] == [tool["id"]]
    hits = kept(client).hits
    assert await search(client, q="wayfinder") == found  # kept, and the same
    assert kept(client).hits == hits + 1
    # A draft saved changes no search answer: what was kept is still served.
    draft = await client.post(
        "/api/v1/practices", json=practice(title="Wayfinder draft"), headers=admin
    )
    assert draft.status_code == 201, draft.text
    assert await search(client, q="wayfinder") == found
    assert kept(client).hits == hits + 2

    # The personal-data gate holds it (a change to the practice, not to the index).
    await direct(
        sessions, "UPDATE practice SET held = :held WHERE id = :id", held=True, id=_id(tool)
    )
    assert (await search(client, q="wayfinder"))["items"] == []
    signed_in = await client.get(
        "/api/v1/practices/search", params={"q": "wayfinder"}, headers=admin
    )
    assert [(i["id"], i["held"]) for i in signed_in.json()["items"]] == [(tool["id"], True)]

    await direct(
        sessions, "UPDATE practice SET held = :held WHERE id = :id", held=False, id=_id(tool)
    )
    await direct(
        sessions,
        "UPDATE practice SET summary = 'Now run by volunteers.' WHERE id = :id",
        id=_id(tool),
    )
    again = await search(client, q="wayfinder")
    assert [i["summary"] for i in again["items"]] == ["Now run by volunteers."]


async def test_an_organisation_is_kept_with_its_etag_until_the_registry_changes(
    client: httpx.AsyncClient, admin: Headers, sessions: async_sessionmaker[AsyncSession]
) -> None:
    org = await create_organisation(client, admin, name="Kept probation service")
    url = f"/api/v1/organisations/{org['id']}"
    first = await client.get(url)
    hits = kept(client).hits
    again = await client.get(url)
    assert kept(client).hits == hits + 1
    assert again.json() == first.json() and again.headers["etag"] == first.headers["etag"]
    assert again.headers["content-type"] == "application/json"

    changed = await client.patch(
        url, json={"region": "Crete"}, headers=admin | {"If-Match": first.headers["etag"]}
    )
    assert changed.status_code == 200, changed.text
    after = await client.get(url)
    assert after.json()["region"] == "Crete" and after.headers["etag"] == changed.headers["etag"]

    await direct(sessions, "UPDATE organisation SET region = 'Corfu' WHERE id = :id", id=_id(org))
    assert (await client.get(url)).json()["region"] == "Corfu"
    # Contact points are never kept: each read of them is a fresh, audited one.
    with_contacts = await client.get(url, params={"include": "contact_points"}, headers=admin)
    assert with_contacts.status_code == 200 and with_contacts.json()["contact_points"] == []


async def test_a_practice_kept_for_anonymous_readers_goes_when_it_is_held_or_its_body_renamed(
    client: httpx.AsyncClient, admin: Headers, sessions: async_sessionmaker[AsyncSession]
) -> None:
    body = await create_organisation(client, admin, name="Kept mentoring trust")
    tool = await publish_practice(
        client,
        admin,
        title="Kept mentoring",
        organisations=[{"organisation_id": body["id"], "role": "responsible"}],
    )
    url = f"/api/v1/practices/{tool['id']}"
    first = await client.get(url)
    assert first.status_code == 200
    assert [o["display_name"] for o in first.json()["organisations"]] == ["Kept mentoring trust"]
    hits = kept(client).hits
    again = await client.get(url)
    assert kept(client).hits == hits + 1 and again.json() == first.json()
    assert again.headers["etag"] == first.headers["etag"]

    await direct(
        sessions, "UPDATE organisation SET name = 'Renamed trust' WHERE id = :id", id=_id(body)
    )
    renamed = await client.get(url)
    assert [o["display_name"] for o in renamed.json()["organisations"]] == ["Renamed trust"]

    await direct(
        sessions, "UPDATE practice SET held = :held WHERE id = :id", held=True, id=_id(tool)
    )
    assert (await client.get(url)).status_code == 404  # held: not there for anonymous readers
    assert (await client.get(url, headers=admin)).json()["held"] is True


async def test_an_answer_served_before_routing_is_still_each_readers_own_response(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    """A kept answer sent before any route runs (`KeptRoutes`) is sent as a route would send
    it: its own request id and the surface headers once each, counted and timed under its
    route; and a reader who signs in, or asks with a condition, is answered by the route."""
    org = await create_organisation(client, admin, name="Surface probation service")
    url = f"/api/v1/organisations/{org['id']}"
    first = await client.get(url, headers={"X-Request-ID": "first-reader"})
    hits = kept(client).hits
    again = [await client.get(url, headers={"X-Request-ID": f"reader-{n}"}) for n in range(3)]
    assert kept(client).hits == hits + 3
    for n, answer in enumerate(again):
        assert answer.status_code == 200 and answer.content == first.content
        assert answer.headers["x-request-id"] == f"reader-{n}"
        assert answer.headers.get_list("x-content-type-options") == ["nosniff"]
        assert answer.headers.get_list("etag") == [first.headers["etag"]]
    metrics = (await client.get("/metrics")).text
    route = 'method="GET",route="/api/v1/organisations/{organisation_id}",status="200"'
    counted = [line for line in metrics.splitlines() if "requests_total{" in line and route in line]
    assert counted and float(counted[0].rsplit(" ", 1)[1]) >= 4, metrics[:2000]

    # The same URL with a condition gets the route's 304; signed in, the route's own answer.
    unchanged = await client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert unchanged.status_code in (200, 304) and kept(client).hits >= hits + 3
    signed_in = await client.get(url, headers=admin | {"X-Request-ID": "editor"})
    assert signed_in.status_code == 200 and signed_in.headers["x-request-id"] == "editor"
    assert signed_in.headers.get("cache-control") == "no-store"  # a signed-in answer's


async def test_a_kept_answer_is_not_served_when_the_database_cannot_say_it_is_current(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    """The database out of reach after an answer was kept: the reader gets the 503 that says
    so, not the answer of before (which may have changed meanwhile, unseen)."""
    await create_organisation(client, admin, name="Unreachable check")
    assert (await client.get("/api/v1/organisations")).status_code == 200
    assert (await client.get("/api/v1/organisations")).status_code == 200  # now kept
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport) and isinstance(transport.app, FastAPI)
    closed = create_engine(f"postgresql+psycopg://integra@127.0.0.1:{free_port()}/nowhere")
    transport.app.state.session_factory = session_factory(closed)
    try:
        answer = await client.get("/api/v1/organisations")
    finally:
        await closed.dispose()
    assert answer.status_code == 503, answer.text
    assert answer.json()["detail"].startswith("database unreachable")
