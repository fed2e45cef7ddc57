"""Whatever a visitor types into the registry's list filters, the answer is never a 5xx."""

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import make_user, organisation

pytestmark = pytest.mark.anyio


@pytest.fixture
async def admin_headers(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    return await make_user(sessions, "admin")


text = st.text(max_size=300) | st.sampled_from(
    [
        "%",
        "_",
        "\\",
        "\x00",
        "a\x00b",
        "' OR 1=1 --",
        '"',
        "*",
        "NEAR",
        "a AND b",
        "-x",
        "\u0301",
        "x" * 10_000,
    ]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(q=text, country=text, kind=text, cursor=text)
async def test_list_filters_never_fail_the_server(
    client: httpx.AsyncClient, q: str, country: str, kind: str, cursor: str
) -> None:
    for params in (
        {"q": q},
        {"country": country},
        {"kind": kind},
        {"cursor": cursor},
        {"q": q, "area": kind, "limit": "0"},
    ):
        response = await client.get("/api/v1/organisations", params=params)
        assert response.status_code in (200, 400, 422), (params, response.text)
        protocols = await client.get("/api/v1/protocols", params=params)
        assert protocols.status_code in (200, 400, 422), (params, protocols.text)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=text, description=text, services=st.lists(text, max_size=3), scheme=text)
async def test_organisation_bodies_never_fail_the_server(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    name: str,
    description: str,
    services: list[str],
    scheme: str,
) -> None:
    body = organisation(
        name=name,
        description=description,
        services=services,
        identifiers=[{"scheme": scheme, "value": "1"}],
    )
    response = await client.post("/api/v1/organisations", json=body, headers=admin_headers)
    assert response.status_code in (201, 409, 422), response.text
