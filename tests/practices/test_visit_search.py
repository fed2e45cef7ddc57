"""Study-visit reports in the search (issue 16 item 4): found by the word forms of their text and
by their recommendations, never by a participant; by those who may read them; with the
record-type facet; and `?q=` on the study-visit list. On SQLite and PostgreSQL."""

import re
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from node.core.outbox import JobContext
from practices.search.sql import SqlSearch
from practices.visit_index import catch_up_visits
from tests.factories import CONFIRMED, Headers, make_user, publish_practice

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"


def report(**overrides: Any) -> dict[str, Any]:
    return {
        "title": "Επίσκεψη μελέτης στις φυλακές Κορυδαλλού",
        "language": "el",
        "organising_authority": {"name": "Υπουργείο Προστασίας του Πολίτη"},
        "host_country": "GR",
        "start_date": "2026-03-02",
        "end_date": "2026-03-04",
        "purpose": "Ανταλλαγή εμπειριών για την απεμπλοκή κρατουμένων.",
        "delegation": [{"profession": "probation officer", "count": 2}],
        "participant_names": ["Eleni Papadaki", "Nikos Stavridis"],
        # a participant named in the free text too: still never found by that name
        "findings": "Οι σωφρονιστικοί υπάλληλοι των φυλακών, όπως είπε η Papadaki, "
        "συνεργάζονται με τους μέντορες.",
        "recommendations": "Κοινή εκπαίδευση προσωπικού.",
        "recommendation_items": [
            {"text": "Appoint an ombudsperson for detainees in disengagement", "addressees": ["EU"]}
        ],
    } | overrides


async def publish_report(client: httpx.AsyncClient, admin: Headers, **overrides: Any) -> str:
    made = await client.post("/api/v1/study-visits", json=report(**overrides), headers=admin)
    assert made.status_code == 201, made.text
    url = f"/api/v1/study-visits/{made.json()['id']}"
    submitted = await client.post(f"{url}/submit", headers=admin | {"If-Match": '"1"'})
    assert submitted.status_code == 200, submitted.text
    done = await client.post(
        f"{url}/publish", json=CONFIRMED, headers=admin | {"If-Match": submitted.headers["etag"]}
    )
    assert done.status_code == 200, done.text
    return str(made.json()["id"])


async def records(
    client: httpx.AsyncClient, headers: Headers | None = None, **params: Any
) -> dict[str, Any]:
    found = await client.get("/api/v1/search", params=params, headers=headers or {})
    assert found.status_code == 200, found.text
    return dict(found.json())


def ids(page: dict[str, Any], kind: str | None = None) -> set[str]:
    return {h["id"] for h in page["items"] if kind is None or h["type"] == kind}


def types(page: dict[str, Any]) -> dict[str, int]:
    return {v["value"]: v["count"] for v in page["facets"]["type"]}


@pytest.fixture
async def world(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, Any]:
    admin = await make_user(sessions, "admin")
    reader = await make_user(sessions, "practitioner", email="reader@example.org")
    greek = await publish_report(client, admin)
    public = await publish_report(
        client,
        admin,
        title="Visite d'étude à Lyon",
        language="fr",
        host_country="FR",
        scope="public",
        purpose="Comprendre les binômes de soutien.",
        findings="Les détenues radicalisées rencontrent un binôme chaque semaine.",
        recommendations=None,
        recommendation_items=[],
        participant_names=["Claire Dubreuil"],
    )
    practices = [
        await publish_practice(
            client, admin, title=f"Binômes de soutien à Lyon {n}", language="fr", country="FR"
        )
        for n in (1, 2)
    ]
    return {
        "admin": admin,
        "reader": reader,
        "greek": greek,
        "public": public,
        "practices": [p["id"] for p in practices],
    }


async def test_a_report_is_found_by_word_forms_and_recommendations_never_by_participants(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    reader, greek, public = world["reader"], world["greek"], world["public"]
    # φυλακών in the findings, φυλακές in the title: the singular finds both forms
    found = await records(client, reader, q="φυλακή")
    assert ids(found, "study_visit") == {greek}
    hit = next(h for h in found["items"] if h["id"] == greek)
    assert hit["link"] == f"/study-visits/{greek}" and hit["kind"] == "study_visit"
    assert "<mark>" in hit["snippet"]
    # French: "radicalisées" in the findings, asked in the masculine singular
    assert ids(await records(client, reader, q="radicalisé"), "study_visit") == {public}
    # a recommendation item's text, in another language than the report
    assert ids(await records(client, reader, q="ombudsperson")) == {greek}
    for name in ("Papadaki", "Eleni Papadaki", "Stavridis", "Dubreuil"):
        assert ids(await records(client, reader, q=name)) == set(), name
    # the practices' own search never sees a report, and keeps its answer's shape
    practices = await client.get("/api/v1/practices/search", params={"q": "φυλακή"})
    assert practices.json()["items"] == [] and "type" not in practices.json()["facets"]


async def test_anonymous_readers_find_no_report_signed_in_readers_do(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    anonymous = await records(client, q="Lyon")
    assert ids(anonymous) == set(world["practices"])  # not even the public report: as its route
    assert types(anonymous) == {"practice": 2}
    assert (await client.get(f"/api/v1/study-visits/{world['public']}")).status_code == 401
    assert ids(await records(client, q="φυλακή")) == set()
    signed_in = await records(client, world["reader"], q="Lyon")
    assert ids(signed_in) == {*world["practices"], world["public"]}
    assert ids(await records(client, world["reader"], q="φυλακή")) == {world["greek"]}


async def test_the_record_type_facet_counts_what_each_type_would_give(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    reader = world["reader"]
    both = await records(client, reader, q="binôme")
    assert both["total"] == 3 and types(both) == {"practice": 2, "study_visit": 1}
    assert "study_visit" not in {v["value"] for v in both["facets"]["kind"]}
    reports = await records(client, reader, q="binôme", type="study_visit")
    assert ids(reports) == {world["public"]} and reports["total"] == 1
    assert types(reports) == {"practice": 2, "study_visit": 1}  # the type's own filter aside
    only = await records(client, reader, q="binôme", type="practice")
    assert ids(only) == set(world["practices"])
    # a filter of another facet applies to the counts: Greece has the one Greek report
    greek = await records(client, reader, country="GR")
    assert types(greek) == {"practice": 0, "study_visit": 1}
    # a practice's kind asked of reports only: nothing, not an error
    none = await records(client, reader, q="binôme", type="study_visit", kind="tool")
    assert none["items"] == [] and none["total"] == 0
    bad = await client.get("/api/v1/search", params={"type": "poster"}, headers=reader)
    assert bad.status_code == 422 and "type" in bad.text


async def test_q_filters_the_study_visit_list_and_follows_edits(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    reader, admin, greek = world["reader"], world["admin"], world["greek"]

    async def listed(**params: Any) -> list[str]:
        page = await client.get("/api/v1/study-visits", params=params, headers=reader)
        assert page.status_code == 200, page.text
        return [v["id"] for v in page.json()["items"]]

    assert len(await listed()) == 2
    assert await listed(q="φυλακές") == [greek]
    assert await listed(q="φυλακές", host_country="FR") == []
    assert await listed(q="Papadaki") == []
    assert await listed(q="φυλακές", status="draft") == []
    first = await client.get("/api/v1/study-visits", params={"q": "binôme φυλακή"}, headers=reader)
    assert first.json()["items"] == []  # every word must match
    paged = await client.get(
        "/api/v1/study-visits", params={"q": "visite", "limit": 1}, headers=reader
    )
    assert [v["id"] for v in paged.json()["items"]] == [world["public"]]

    # an edit of a published report is searchable at once; what it no longer says is not
    current = await client.get(f"/api/v1/study-visits/{greek}", headers=admin)
    edited = await client.patch(
        f"/api/v1/study-visits/{greek}",
        json={"findings": "Τα προγράμματα αποκατάστασης ξεκινούν πριν από την αποφυλάκιση."},
        headers=admin | {"If-Match": current.headers["etag"]},
    )
    assert edited.status_code == 200, edited.text
    assert await listed(q="αποφυλάκισης") == [greek]
    assert await listed(q="μέντορες") == []
    assert await listed(q="ombudsperson") == [greek]  # its recommendation items stay

    # withdrawn: out of the index, from the list's search and the combined one
    withdrawn = await client.post(
        f"/api/v1/study-visits/{greek}/withdraw",
        json={"reason": "Superseded by the 2027 visit"},
        headers=admin | {"If-Match": edited.headers["etag"]},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert await listed(q="ombudsperson") == []
    assert ids(await records(client, reader, q="αποφυλάκιση")) == set()


async def test_the_sweep_puts_back_reports_an_emptied_index_lost(
    client: httpx.AsyncClient, world: dict[str, Any], sessions: async_sessionmaker[AsyncSession]
) -> None:
    search = SqlSearch()
    async with sessions() as session:
        await session.run_sync(lambda s: search.clear(s))  # as a rebuild after a new analysis
        await session.commit()
    assert ids(await records(client, world["reader"], q="φυλακή")) == set()
    async with sessions() as session:
        done = await session.run_sync(lambda s: catch_up_visits(s, JobContext(search=search)))
        again = await session.run_sync(lambda s: catch_up_visits(s, JobContext(search=search)))
        await session.commit()
    assert done == (2, 0) and again == (0, 0)
    assert ids(await records(client, world["reader"], q="φυλακή")) == {world["greek"]}


async def sign_in(client: httpx.AsyncClient, email: str) -> None:
    form = await client.get("/sign-in")
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form.text)
    assert token
    signed = await client.post(
        "/sign-in",
        data={"email": email, "password": PASSWORD, "csrf_token": token[1], "next": "/"},
    )
    assert signed.status_code in (200, 303), signed.text


async def test_the_search_page_shows_the_record_type_facet_and_links_reports(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    anonymous = await client.get("/", params={"q": "binôme"})
    assert "2 practices found" in anonymous.text and 'name="type"' not in anonymous.text
    await sign_in(client, "reader@example.org")
    page = await client.get("/", params={"q": "binôme"}, headers={"Accept-Language": "fr"})
    assert page.status_code == 200
    assert "3 fiches trouvées" in page.text
    assert re.search(r'value="study_visit"[^>]*>\s*<label[^>]*>Rapports de visite', page.text)
    assert f'href="/study-visits/{world["public"]}"' in page.text
    reports = await client.get("/", params={"q": "binôme", "type": "study_visit"})
    assert "1 study-visit report found" in reports.text
    assert re.search(r'value="study_visit" checked', reports.text)
    assert f'href="/practices/{world["practices"][0]}"' not in reports.text
