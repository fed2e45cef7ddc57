"""The HTML interface without a browser: pages, languages, sessions, CSRF, escaping."""

import re
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import create_contact, create_organisation, make_user, publish_practice

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, email: str) -> httpx.Response:
    form = await client.get("/sign-in")
    return await client.post(
        "/sign-in",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf_of(form.text), "next": "/"},
    )


@pytest.fixture
async def world(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, Any]:
    admin = await make_user(sessions, "admin")
    org = await create_organisation(client, admin, name="Κέντρο Επανένταξης Αθήνας")
    unit = await create_organisation(client, admin, name="Attica unit", parent_id=org["id"])
    await create_contact(client, admin, org["id"], email="liaison@probation.example.org")
    practice = await publish_practice(
        client,
        admin,
        title="Κοινωνική επανένταξη μετά την αποφυλάκιση",
        language="el",
        summary="Στήριξη για την επανένταξη αποφυλακισμένων.",
        organisations=[{"organisation_id": org["id"], "role": "responsible"}],
        evaluation={
            "type": "outcome_evaluation",
            "outcomes": [{"outcome": "Re-offending", "rating": "promising", "source": "Study"}],
        },
    )
    await make_user(sessions, "practitioner", email="reader@example.org")
    return {"admin": admin, "org": org, "unit": unit, "practice": practice}


async def test_search_page_marks_greek_words_typed_without_accents(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    page = await client.get("/", params={"q": "επανενταξη"}, headers={"Accept-Language": "el"})
    assert page.status_code == 200
    assert '<html lang="el">' in page.text
    assert world["practice"]["title"] in page.text
    assert "<mark>επανένταξη</mark>" in page.text
    assert "Βρέθηκε 1 πρακτική" in page.text
    assert "Καθοδήγηση (mentoring)" in page.text  # a facet value's label, not its code
    assert 'name="intervention_type" value="mentoring"' in page.text

    partial = await client.get(
        "/", params={"q": "επανενταξη", "setting": "prison"}, headers={"HX-Request": "true"}
    )
    assert partial.status_code == 200
    assert "<html" not in partial.text and 'id="results"' in partial.text
    assert '<p id="result-count" class="total" role="status" hx-swap-oob="true">' in partial.text
    assert "0 practices found" in partial.text


async def test_filters_and_sort_stay_in_the_url_and_bad_values_are_dropped(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    page = await client.get(
        "/",
        params=[("kind", "practice"), ("kind", "not-a-kind"), ("country", "gr"), ("sort", "date")],
    )
    assert page.status_code == 200
    assert "1 practice found" in page.text
    assert re.search(r'value="practice" checked', page.text)
    assert '<option value="date" selected>' in page.text


async def test_practice_page_shows_evidence_licence_and_links_its_organisation(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    client.cookies.set("integra_lang", "fr")
    page = await client.get(f"/practices/{world['practice']['id']}")
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    assert f'href="/organisations/{world["org"]["id"]}"' in page.text
    assert "Prometteuse" in page.text and "Re-offending" in page.text
    assert "Creative Commons Attribution 4.0" in page.text
    assert (await client.get("/practices/not-an-id")).status_code == 404
    missing = await client.get("/practices/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and "Page introuvable" in missing.text


async def test_contact_points_are_for_signed_in_readers_and_each_read_is_audited(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    url = f"/organisations/{world['org']['id']}"
    anonymous = await client.get(url)
    assert anonymous.status_code == 200
    assert "Attica unit" in anonymous.text  # its unit, linked
    assert "liaison@probation.example.org" not in anonymous.text

    signed = await sign_in(client, "reader@example.org")
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert "integra_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; behind TLS the cookie is Secure
    seen = await client.get(url)
    assert "liaison@probation.example.org" in seen.text and "reader@example.org" in seen.text
    log = await client.get(
        "/api/v1/audit-log",
        params={"entity_type": "contact_point", "actor": "reader@example.org"},
        headers=world["admin"],
    )
    assert [e["action"] for e in log.json()["items"]] == ["read"]

    out = await client.post("/sign-out", data={"csrf_token": csrf_of(seen.text)})
    assert out.status_code == 303
    again = await client.get(url)
    assert "liaison@probation.example.org" not in again.text


async def test_a_form_without_its_token_is_refused(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    refused = await client.post(
        "/sign-in", data={"email": "reader@example.org", "password": PASSWORD}
    )
    assert refused.status_code == 403
    assert "without the security token" in refused.text
    forged = await client.post(
        "/sign-in",
        data={"email": "reader@example.org", "password": PASSWORD, "csrf_token": "0" * 64},
    )
    assert forged.status_code == 403 and "integra_session" not in forged.headers.get(
        "set-cookie", ""
    )
    form = await client.get("/sign-in")
    wrong = await client.post(
        "/sign-in",
        data={"email": "reader@example.org", "password": "nope", "csrf_token": csrf_of(form.text)},
    )
    assert wrong.status_code == 401 and "Unknown e-mail or wrong password." in wrong.text


async def test_language_from_accept_language_then_the_switcher(
    client: httpx.AsyncClient,
) -> None:
    negotiated = await client.get("/", headers={"Accept-Language": "de, bg;q=0.5, pt-PT;q=0.8"})
    assert '<html lang="pt">' in negotiated.text and "Pesquisar práticas" in negotiated.text
    assert '<html lang="en">' in (await client.get("/", headers={"Accept-Language": "ja"})).text

    switched = await client.get("/language/bg", params={"next": "/?q=x"})
    assert switched.status_code == 303 and switched.headers["location"] == "/?q=x"
    after = await client.get("/", headers={"Accept-Language": "fr"})
    assert '<html lang="bg">' in after.text and "Търсене на практики" in after.text
    offsite = await client.get("/language/el", params={"next": "//evil.example/"})
    assert offsite.headers["location"] == "/"
    # After htmx changed the search in the address bar, the switcher keeps the new search.
    typed = await client.get(
        "/language/fr", params={"next": "/"}, headers={"Referer": "http://node.test/?q=typed"}
    )
    assert typed.headers["location"] == "/?q=typed"


async def test_behind_tls_the_cookies_are_secure(client: httpx.AsyncClient) -> None:
    secure = httpx.AsyncClient(transport=client._transport, base_url="https://node.test")
    async with secure:
        form = await secure.get("/sign-in")
        assert "integra_csrf=" in form.headers["set-cookie"]
        assert "Secure" in form.headers["set-cookie"] and "HttpOnly" in form.headers["set-cookie"]


async def test_hostile_text_renders_inert(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_user(sessions, "admin")
    hostile = await publish_practice(
        client,
        admin,
        title="<script>alert('title')</script> mentoring",
        summary='Mentoring <img src=x onerror="alert(1)"> with <mark>fake</mark> marks.',
    )
    for url in ("/?q=mentoring", f"/practices/{hostile['id']}"):
        page = await client.get(url)
        assert page.status_code == 200
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;alert" in page.text
        assert "<mark>fake</mark>" not in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]


async def test_docs_are_served_from_the_package(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "/static/swagger/swagger-ui-bundle.js" in docs.text and "cdn." not in docs.text
    bundle = await client.get("/static/swagger/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    assert (await client.get("/static/htmx.min.js")).status_code == 200


async def test_unknown_api_paths_still_answer_in_json(client: httpx.AsyncClient) -> None:
    api = await client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.json()["error"] == "Not Found"
    html = await client.get("/no-such-page", headers={"Accept-Language": "el"})
    assert html.status_code == 404 and "Η σελίδα δεν βρέθηκε" in html.text
