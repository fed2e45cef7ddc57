"""The organisation list is serialised from columns, not through the response model: each item
must be exactly what the model gives for the same organisation (the single read's body)."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import create_organisation, make_user

pytestmark = pytest.mark.anyio


async def test_each_listed_organisation_is_its_own_read_body_key_for_key(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_user(sessions, "admin")
    parent = await create_organisation(client, admin, name="Aa parent")
    await create_organisation(
        client,
        admin,
        name="Ab child",
        parent_id=parent["id"],
        identifiers=[
            {"scheme": "GR-AFM", "value": "090000045"},
            {"scheme": "EU-VAT", "value": "EL090000045"},
            {"scheme": "GR-AFM", "value": "090000046"},
        ],
        address={"locality": "Athens", "postal_code": "104 31"},
        website="https://www.example.org",
        legal_basis="Law 4478/2017",
        description="Supervision <b>& support</b> — «quoted» \u00e9\u00e8",
        areas=["reintegration", "rehabilitation", "prevention"],
        single_point_of_contact=True,
        last_verified_date="2026-01-02",
    )
    await create_organisation(client, admin, name="Ac bare", local_names=[], areas=[])

    listed = await client.get("/api/v1/organisations", params={"limit": 2})
    assert listed.status_code == 200
    assert listed.headers["content-type"] == "application/json"
    page = listed.json()
    following = await client.get(
        "/api/v1/organisations", params={"limit": 2, "cursor": page["next_cursor"]}
    )
    items = page["items"] + following.json()["items"]
    assert [i["name"] for i in items][:3] == ["Aa parent", "Ab child", "Ac bare"]
    assert list(page) == ["items", "next_cursor"]
    for item in items:
        read = (await client.get(f"/api/v1/organisations/{item['id']}")).json()
        assert list(item) == list(read)  # the same keys in the same order
        assert item == read
    child = items[1]
    assert child["website"] == "https://www.example.org/"  # as the model gives it
    assert [i["scheme"] for i in child["identifiers"]] == ["EU-VAT", "GR-AFM", "GR-AFM"]
    assert child["address"] == {
        "street": None,
        "locality": "Athens",
        "postal_code": "104 31",
        "region": None,
    }
    assert "contact_points" not in child
