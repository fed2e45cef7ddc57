"""The registry API for organisations: create, read, update, archive, filters, pages."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import Headers, create_organisation, make_user, organisation

pytestmark = pytest.mark.anyio


@pytest.fixture
async def admin(sessions: async_sessionmaker[AsyncSession]) -> Headers:
    return await make_user(sessions, "admin")


async def test_created_organisation_reads_back_with_its_etag(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    created = await create_organisation(
        client,
        admin,
        identifiers=[{"scheme": "GR-AFM", "value": "090000045"}],
        address={"locality": "Athens"},
        website="https://www.example.org/",
    )
    response = await client.get(f"/api/v1/organisations/{created['id']}")
    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'
    body = response.json()
    assert body["local_names"] == [{"language": "el", "name": "Υπηρεσία Επιμελητών Ανηλίκων"}]
    assert body["identifiers"] == [{"scheme": "GR-AFM", "value": "090000045"}]
    assert body["areas"] == ["rehabilitation", "reintegration"]
    assert body["address"]["locality"] == "Athens"
    assert body["version"] == 1 and body["status"] == "active"


async def test_stale_if_match_is_refused_and_the_record_is_unchanged(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    created = await create_organisation(client, admin, region="Attica")
    url = f"/api/v1/organisations/{created['id']}"
    first = await client.patch(url, json={"region": "Crete"}, headers=admin | {"If-Match": '"1"'})
    assert first.status_code == 200 and first.headers["etag"] == '"2"'

    stale = await client.patch(url, json={"region": "Epirus"}, headers=admin | {"If-Match": '"1"'})

    assert stale.status_code == 412
    assert "changed by someone else" in stale.json()["detail"]
    stored = (await client.get(url)).json()
    assert stored["region"] == "Crete" and stored["version"] == 2


async def test_a_write_without_if_match_is_refused(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    created = await create_organisation(client, admin)
    response = await client.patch(
        f"/api/v1/organisations/{created['id']}", json={"region": "Crete"}, headers=admin
    )
    assert response.status_code == 428
    assert "If-Match" in response.json()["detail"]


async def test_an_update_that_changes_nothing_keeps_the_version(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    created = await create_organisation(client, admin, region="Attica")
    response = await client.patch(
        f"/api/v1/organisations/{created['id']}",
        json={"region": "Attica"},
        headers=admin | {"If-Match": '"1"'},
    )
    assert response.status_code == 200 and response.json()["version"] == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"country": "XX"}, "country"),
        ({"kind": "spaceship"}, "kind"),
        ({"name": ""}, "name"),
        ({"languages": ["greek"]}, "languages.0"),
        ({"website": "not a url"}, "website"),
        ({"nickname": "x"}, "nickname"),
    ],
)
async def test_invalid_fields_are_named_in_a_422(
    client: httpx.AsyncClient, admin: Headers, change: dict[str, object], field: str
) -> None:
    response = await client.post(
        "/api/v1/organisations", json=organisation(**change), headers=admin
    )
    assert response.status_code == 422
    assert field in [f["field"] for f in response.json()["fields"]]


async def test_a_future_verification_date_is_refused(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    response = await client.post(
        "/api/v1/organisations", json=organisation(last_verified_date="2999-01-01"), headers=admin
    )
    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "last_verified_date"


async def test_a_duplicate_identifier_is_a_conflict_and_stores_nothing(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    identifier = [{"scheme": "PT-NIPC", "value": "600014762"}]
    await create_organisation(client, admin, country="PT", identifiers=identifier)
    response = await client.post(
        "/api/v1/organisations",
        json=organisation(country="PT", name="Copy", identifiers=identifier),
        headers=admin,
    )
    assert response.status_code == 409
    assert "PT-NIPC:600014762" in response.json()["detail"]
    listed = (await client.get("/api/v1/organisations", params={"q": "Copy"})).json()
    assert listed["items"] == []


async def test_unknown_organisation_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/organisations/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.json()["error"] == "Not found"


async def test_parent_must_exist_and_cannot_make_a_loop(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    top = await create_organisation(client, admin, name="General Directorate")
    child = await create_organisation(client, admin, name="Regional Service", parent_id=top["id"])
    loop = await client.patch(
        f"/api/v1/organisations/{top['id']}",
        json={"parent_id": child["id"]},
        headers=admin | {"If-Match": '"1"'},
    )
    assert loop.status_code == 422 and loop.json()["fields"][0]["field"] == "parent_id"
    missing = await client.post(
        "/api/v1/organisations",
        json=organisation(parent_id="00000000-0000-0000-0000-000000000001"),
        headers=admin,
    )
    assert missing.status_code == 422


async def test_archived_organisations_leave_default_listings(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    created = await create_organisation(client, admin, name="Closed Office")
    archived = await client.post(
        f"/api/v1/organisations/{created['id']}/archive", headers=admin | {"If-Match": '"1"'}
    )
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    default = (await client.get("/api/v1/organisations", params={"q": "Closed Office"})).json()
    assert default["items"] == []
    asked = await client.get(
        "/api/v1/organisations", params={"q": "Closed Office", "status": "archived"}
    )
    assert [o["id"] for o in asked.json()["items"]] == [created["id"]]


async def test_filters_combine_and_across_fields_or_within_one(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    ngo_gr = await create_organisation(
        client,
        admin,
        kind="ngo",
        sector="ngo",
        country="GR",
        areas=["after_care"],
        target_groups=["released_prisoners"],
    )
    police_gr = await create_organisation(
        client, admin, kind="police", country="GR", areas=["prevention"], target_groups=[]
    )
    ngo_bg = await create_organisation(
        client, admin, kind="ngo", sector="ngo", country="BG", region="Sofia", areas=["after_care"]
    )

    async def ids(**params: object) -> set[str]:
        response = await client.get("/api/v1/organisations", params=params)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        return {o["id"] for o in response.json()["items"]}

    assert await ids(country="GR", kind="ngo") == {ngo_gr["id"]}
    assert await ids(country="GR", kind=["ngo", "police"]) == {ngo_gr["id"], police_gr["id"]}
    assert await ids(area="after_care") == {ngo_gr["id"], ngo_bg["id"]}
    assert await ids(area="after_care", country="bg") == {ngo_bg["id"]}
    assert await ids(target_group="released_prisoners") == {ngo_gr["id"]}
    assert await ids(sector="ngo", level="regional", region="Attica") == {ngo_gr["id"]}


async def test_text_search_ignores_case_and_accents_in_every_script(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    fr = await create_organisation(client, admin, country="FR", name="Service de réinsertion")
    gr = await create_organisation(client, admin, name="Κοινωνική Υπηρεσία Φυλακών")
    bg = await create_organisation(client, admin, country="BG", name="Областна служба ПРОБАЦИЯ")

    async def found(q: str) -> set[str]:
        response = await client.get("/api/v1/organisations", params={"q": q})
        return {o["id"] for o in response.json()["items"]}

    assert fr["id"] in await found("REINSERTION")
    assert gr["id"] in await found("κοινωνικη")
    assert bg["id"] in await found("пробация")
    assert gr["id"] in await found("Υπηρεσία Επιμελητών")  # the local name
    assert await found("100%_") == set()


async def test_cursor_pages_visit_every_organisation_once(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    made = {
        (await create_organisation(client, admin, name=f"Body {i:02d}", country="PT"))["id"]
        for i in range(7)
    }
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"country": "PT", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/organisations", params=params)).json()  # type: ignore[arg-type]
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and set(seen) == made


async def test_a_forged_cursor_is_a_422(client: httpx.AsyncClient) -> None:
    for cursor in ("@@@", "WzEsMl0", "WyJhIiwibm90LWEtdXVpZCJd"):
        response = await client.get("/api/v1/organisations", params={"cursor": cursor})
        assert response.status_code == 422, cursor
        assert response.json()["fields"][0]["field"] == "cursor"


async def test_adding_an_identifier_keeps_the_existing_one(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    first = {"scheme": "vat", "value": "EL1"}
    created = await create_organisation(client, admin, identifiers=[first])
    response = await client.patch(
        f"/api/v1/organisations/{created['id']}",
        json={"identifiers": [first, {"scheme": "gemi", "value": "2"}]},
        headers=admin | {"If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["identifiers"]) == 2


@pytest.mark.parametrize(
    "body",
    [
        {"services": None},
        {"areas": None},
        {"identifiers": None},
        {"local_names": None},
        {"single_point_of_contact": None},
        {"name": None},
        {"languages": None},
        {"identifiers": [{"scheme": "x", "value": "1"}, {"scheme": "x", "value": "1"}]},
        {"identifiers": [{"scheme": "urn:x", "value": "1"}]},
    ],
)
async def test_bad_patches_are_422_naming_the_field(
    client: httpx.AsyncClient, admin: Headers, body: dict[str, object]
) -> None:
    created = await create_organisation(client, admin)
    response = await client.patch(
        f"/api/v1/organisations/{created['id']}", json=body, headers=admin | {"If-Match": '"1"'}
    )
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["field"].split(".")[0] == next(iter(body))
    assert (await client.get(f"/api/v1/organisations/{created['id']}")).json()["version"] == 1


@pytest.mark.parametrize("tag", ['"²"'.encode(), b'"' + b"9" * 5000 + b'"', b"*", b'"v1"'])
async def test_odd_if_match_values_are_422(
    client: httpx.AsyncClient, admin: Headers, tag: bytes
) -> None:
    created = await create_organisation(client, admin)
    response = await client.patch(
        f"/api/v1/organisations/{created['id']}",
        json={"region": "x"},
        headers={**admin, "If-Match": tag},  # type: ignore[dict-item]
    )
    assert response.status_code == 422


async def test_crafted_cursors_are_422(client: httpx.AsyncClient) -> None:
    import base64
    import json

    nested = base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).decode()
    surrogate = base64.urlsafe_b64encode(
        json.dumps(["\ud800", "00000000-0000-0000-0000-000000000000"]).encode()
    ).decode()
    for cursor in (nested, surrogate):
        for path in ("/api/v1/organisations", "/api/v1/protocols"):
            response = await client.get(path, params={"cursor": cursor})
            assert response.status_code == 422, (path, response.text)


async def test_unknown_routes_answer_in_the_error_shape(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/nothing-here")
    wrong_method = await client.put("/api/v1/organisations")
    assert missing.status_code == 404 and set(missing.json()) == {"error", "detail"}
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]
