"""Readiness tells an operator whether the database answers and the schema is current."""

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

pytestmark = pytest.mark.anyio


async def test_ready_when_the_schema_is_at_head(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200 and response.json()["status"] == "ready"


async def test_not_ready_when_a_migration_is_pending(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await session.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    await session.commit()
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert "schema at older" in response.json()["detail"]


async def test_responses_carry_a_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abc123"})
    assert response.headers["x-request-id"] == "abc123"


async def test_the_liveness_probe_answers_as_its_route_does(client: httpx.AsyncClient) -> None:
    # Answered before routing (node.api.Liveness), with the route's bytes and headers, and the
    # outer layers' own; any other method still goes to the routes, and the document keeps it.
    probe = await client.get("/healthz")
    assert probe.status_code == 200 and probe.content == b'{"status":"ok"}'
    assert probe.headers["content-type"] == "application/json"
    assert probe.headers["content-length"] == str(len(probe.content))
    assert probe.headers["x-content-type-options"] == "nosniff" and probe.headers["x-request-id"]
    assert (await client.post("/healthz")).status_code in (404, 405)  # routed: not the probe
    assert (await client.get("/healthz/")).status_code != 200
    assert "/healthz" in (await client.get("/openapi.json")).json()["paths"]


async def test_control_characters_in_a_url_are_a_400(client: httpx.AsyncClient) -> None:
    for url in (
        "/api/v1/organisations?q=a%00b",
        "/api/v1/hub/records/PT%3Ax%00",
        "/api/v1/practices/search?q=%1b%5b31m",
    ):
        response = await client.get(url)
        assert response.status_code == 400, url
        assert "control characters" in response.json()["detail"]
