"""Cooperation protocols (memoranda of understanding) between organisations."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import Headers, create_organisation, make_user

pytestmark = pytest.mark.anyio


@pytest.fixture
async def admin(sessions: async_sessionmaker[AsyncSession]) -> Headers:
    return await make_user(sessions, "admin")


async def framework(client: httpx.AsyncClient, admin: Headers) -> dict[str, Any]:
    """Bulgaria's prison and probation cooperation framework, as the report describes it."""
    gdes = await create_organisation(
        client,
        admin,
        country="BG",
        kind="prison_administration",
        level="national",
        name="General Directorate Execution of Sentences",
    )
    regional = await create_organisation(
        client,
        admin,
        country="BG",
        kind="probation",
        name="Regional Service Execution of Sentences Sofia",
    )
    municipality = await create_organisation(
        client, admin, country="BG", kind="municipality", level="local", name="Sofia Municipality"
    )
    response = await client.post(
        "/api/v1/protocols",
        headers=admin,
        json={
            "title": "Prison, Arrests and Probation Services Cooperation Framework",
            "country": "BG",
            "parties": [
                {
                    "organisation_id": gdes["id"],
                    "role": "lead",
                    "responsibilities": "Heads of services guarantee implementation",
                },
                {"organisation_id": regional["id"], "role": "party"},
                {"organisation_id": municipality["id"], "role": "party"},
            ],
            "purpose": "Exchange information, establish contacts, develop good practices.",
            "information_sharing_rules": "Information exchanged within each party's legal limits.",
            "meeting_frequency": "annual",
            "signed_date": "2019-03-01",
            "review_date": "2027-03-01",
            "status": "in_force",
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_protocol_names_its_parties_and_their_roles(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    created = await framework(client, admin)
    read = (await client.get(f"/api/v1/protocols/{created['id']}")).json()
    assert [p["role"] for p in read["parties"]] == ["lead", "party", "party"]
    assert read["parties"][0]["organisation_name"] == "General Directorate Execution of Sentences"
    lead_id = read["parties"][0]["organisation_id"]
    by_party = (await client.get("/api/v1/protocols", params={"organisation_id": lead_id})).json()
    assert [p["id"] for p in by_party["items"]] == [created["id"]]


async def test_protocol_validation_names_the_field(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    one = await create_organisation(client, admin)
    two = await create_organisation(client, admin)
    unknown = "00000000-0000-0000-0000-000000000009"
    pair = [{"organisation_id": one["id"]}, {"organisation_id": two["id"]}]
    cases = [
        ({"parties": [{"organisation_id": one["id"]}]}, "parties"),
        ({"parties": [pair[0], pair[0]]}, "parties.1.organisation_id"),
        ({"parties": [pair[0], {"organisation_id": unknown}]}, "parties.1.organisation_id"),
        ({"signed_date": "2020-01-01", "review_date": "2019-01-01"}, "review_date"),
        ({"meeting_frequency": "hourly"}, "meeting_frequency"),
    ]
    for change, field in cases:
        body = {"title": "MoU", "country": "GR", "parties": pair} | change
        response = await client.post("/api/v1/protocols", json=body, headers=admin)
        assert response.status_code == 422, change
        assert response.json()["fields"][0]["field"] == field, response.json()
    assert (await client.get("/api/v1/protocols", params={"q": "MoU"})).json()["items"] == []


async def test_protocol_edits_are_versioned(client: httpx.AsyncClient, admin: Headers) -> None:
    created = await framework(client, admin)
    url = f"/api/v1/protocols/{created['id']}"
    ok = await client.patch(
        url, json={"status": "under_review"}, headers=admin | {"If-Match": '"1"'}
    )
    stale = await client.patch(url, json={"status": "expired"}, headers=admin | {"If-Match": '"1"'})
    assert ok.status_code == 200 and ok.json()["version"] == 2
    assert stale.status_code == 412
    assert (await client.get(url)).json()["status"] == "under_review"
    archived = await client.post(f"{url}/archive", headers=admin | {"If-Match": '"2"'})
    assert archived.json()["status"] == "archived"
    assert (await client.get("/api/v1/protocols", params={"country": "BG"})).json()["items"] == []
