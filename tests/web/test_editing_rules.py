"""Practices and study-visit reports in the browser, without a browser: who may open which
form, and that every form refuses a request without a valid CSRF token (both databases). The
journeys themselves are in test_editing.py."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import CONFIRMED, create_organisation, make_user, practice
from tests.web.test_pages import csrf_of, sign_in

pytestmark = pytest.mark.anyio


async def _world(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, Any]:
    admin = await make_user(sessions, "admin", email="np@example.org")
    ours = await create_organisation(client, admin, name="Probation Service of Attica")
    theirs = await create_organisation(
        client, admin, name="Κέντρο Θεσσαλονίκης", languages=["el"], country="GR"
    )
    await make_user(sessions, "editor", organisations=[ours["id"]], email="ours@example.org")
    await make_user(sessions, "editor", organisations=[theirs["id"]], email="them@example.org")
    professional = await make_user(sessions, "practitioner", email="pro@example.org")
    link = [{"organisation_id": ours["id"], "role": "responsible"}]
    created = await client.post(
        "/api/v1/practices", json=practice(organisations=link), headers=admin
    )
    assert created.status_code == 201, created.text
    return {
        "admin": admin,
        "professional": professional,
        "ours": ours,
        "theirs": theirs,
        "practice": created.json(),
    }


async def test_an_editor_cannot_reach_another_organisations_practice_forms(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await _world(client, sessions)
    edit = f"/practices/{world['practice']['id']}/edit"
    assert (await client.get(edit)).status_code == 303  # signed out: to the sign-in page

    await sign_in(client, "them@example.org")
    refused = await client.get(edit)
    assert refused.status_code == 403 and 'id="practice-form"' not in refused.text
    token = csrf_of((await client.get("/my-work")).text)
    for action in ("edit", "submit", "publish", "withdraw", "scope"):
        sent = await client.post(
            edit.removesuffix("edit") + action,
            data={"csrf_token": token, "version": "1", "title": "Taken over", "reason": "x"},
        )
        assert sent.status_code == 403, action
    # Their own organisation only among the responsible bodies a new practice may name.
    form = (await client.get("/practices/new")).text
    assert world["theirs"]["id"] in form and world["ours"]["id"] not in form
    stored = await client.get(
        f"/api/v1/practices/{world['practice']['id']}", headers=world["admin"]
    )
    assert stored.json()["version"] == 1 and stored.json()["title"] != "Taken over"

    await sign_in(client, "ours@example.org")
    page = await client.get(edit)
    assert page.status_code == 200 and 'id="publish-form"' not in page.text  # admins publish
    token = csrf_of(page.text)
    published = await client.post(
        edit.removesuffix("edit") + "publish",
        data={"csrf_token": token, "version": "1", **{k: "1" for k in CONFIRMED}},
    )
    assert published.status_code == 403

    await sign_in(client, "pro@example.org")  # a practitioner writes reports, not practices
    assert (await client.get("/practices/new")).status_code == 403
    assert (await client.get(edit)).status_code == 403


async def test_every_form_refuses_a_request_without_a_valid_csrf_token(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await _world(client, sessions)
    await sign_in(client, "pro@example.org")
    started = await client.post(
        "/study-visits/new",
        data={
            "csrf_token": csrf_of((await client.get("/study-visits/new")).text),
            "title": "Visit to Porto",
            "language": "en",
            "organising_authority": "Probation Service of Attica",
            "host_country": "PT",
            "start_date": "2026-10-01",
            "end_date": "2026-10-02",
            "purpose": "Learn.",
        },
    )
    assert started.status_code == 303, started.text
    report = started.headers["location"].split("/edit/")[0]
    submitted = await client.post(  # a report without its delegation is not submitted
        f"{report}/submit",
        data={"csrf_token": csrf_of((await client.get(f"{report}/edit/6")).text), "version": "1"},
    )
    assert submitted.status_code == 422 and 'id="err-submit"' in submitted.text
    api = f"/api/v1{report}"
    draft = await client.get(api, headers=world["professional"])
    assert draft.status_code == 200 and draft.json()["delegation"] == []
    refused = await client.post(  # the service's own rule, as the API meets it
        f"{api}/submit", headers=world["professional"] | {"If-Match": '"1"'}
    )
    assert refused.status_code == 422, refused.text
    assert "delegation" in refused.text

    await sign_in(client, "np@example.org")
    practice_path = f"/practices/{world['practice']['id']}"
    forms = [
        "/practices/new",
        f"{practice_path}/edit",
        f"{practice_path}/submit",
        f"{practice_path}/publish",
        f"{practice_path}/withdraw",
        f"{practice_path}/scope",
        "/study-visits/new",
        f"{report}/edit/1",
        f"{report}/participants",
        f"{report}/submit",
        f"{report}/review/comment",
        f"{report}/review/request-changes",
        f"{report}/review/publish",
        f"{report}/review/scope",
    ]
    for path in forms:
        for token in (None, "0" * 64):
            data = {"version": "1", "title": "Forged", "comment": "Forged", "scope": "national"}
            if token:
                data["csrf_token"] = token
            sent = await client.post(path, data=data)
            assert sent.status_code == 403, (path, token)
            assert "This form has expired" in sent.text
    stored = await client.get(
        f"/api/v1/practices/{world['practice']['id']}", headers=world["admin"]
    )
    assert stored.json()["version"] == 1
    visit = await client.get(f"/api/v1{report}", headers=world["admin"])
    assert visit.json()["version"] == 1 and visit.json()["comments"] == []


async def test_the_directory_and_the_api_filter_organisations_by_language(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await _world(client, sessions)  # "ours" works in el and en, "theirs" in el only
    greek = await client.get("/api/v1/organisations", params={"language": "el"})
    assert {o["id"] for o in greek.json()["items"]} == {world["ours"]["id"], world["theirs"]["id"]}
    english = await client.get("/api/v1/organisations", params=[("language", "EN")])
    assert [o["id"] for o in english.json()["items"]] == [world["ours"]["id"]]
    nothing = await client.get("/api/v1/organisations", params=[("language", "fr")])
    assert nothing.json()["items"] == []
    bad = await client.get("/api/v1/organisations", params={"language": "e%"})
    assert bad.status_code == 422

    page = await client.get(
        "/organisations", params={"language": "en"}, headers={"Accept-Language": "fr"}
    )
    assert '<option value="en" selected>Anglais</option>' in page.text
    assert world["ours"]["name"] in page.text and world["theirs"]["name"] not in page.text
    dropped = await client.get("/organisations", params={"language": "%"})
    assert world["theirs"]["name"] in dropped.text  # not a language: the filter is dropped
