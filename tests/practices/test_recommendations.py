"""A study-visit report's recommendations as items followed up: who may change their status,
what is refused and why, the follow-up lists, the withdrawal of a report, the web form's
recommendation rows and the follow-up pages. (Mail, the hub and mirrors: see
tests/federation/test_followup.py.)"""

import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from node.core.models import OutboxMessage
from tests import factories
from tests.factories import Headers, create_contact, create_organisation, make_user

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"


def report(orgs: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {
        "title": f"Study visit to Athens {uuid.uuid4().hex[:6]}",
        "language": "en",
        "organising_authority": {"organisation_id": orgs["a"]["id"]},
        "host_country": "GR",
        "start_date": "2026-04-01",
        "end_date": "2026-04-03",
        "purpose": "Learning how exit work is organised.",
        "delegation": [{"profession": "social worker", "count": 3}],
        "recommendation_items": [
            {"text": "Train prison staff in exit work.", "addressees": [orgs["a"]["id"]]},
            {"text": "Fund a European network.", "addressees": ["EU", orgs["b"]["id"]]},
        ],
    }
    return body | overrides


@pytest.fixture
async def world(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> Any:
    admin = await make_user(sessions, "admin", email="np@example.org")
    orgs = {k: await create_organisation(client, admin) for k in ("a", "b")}
    await create_contact(client, admin, orgs["a"]["id"])
    editor_a = await make_user(sessions, "editor", organisations=[orgs["a"]["id"]])
    editor_b = await make_user(sessions, "editor", organisations=[orgs["b"]["id"]])
    author = await make_user(sessions, "practitioner", email="author@example.org")
    return {"admin": admin, "orgs": orgs, "a": editor_a, "b": editor_b, "author": author}


async def publish(client: httpx.AsyncClient, admin: Headers, body: dict[str, Any]) -> Any:
    created = await client.post("/api/v1/study-visits", json=body, headers=admin)
    assert created.status_code == 201, created.text
    path = f"/api/v1/study-visits/{created.json()['id']}"
    submitted = await client.post(
        f"{path}/submit", headers=admin | {"If-Match": created.headers["etag"]}
    )
    published = await client.post(
        f"{path}/publish",
        json=factories.CONFIRMED,
        headers=admin | {"If-Match": submitted.headers["etag"]},
    )
    assert published.status_code == 200, published.text
    return published


async def test_addressees_are_organisations_of_the_registry_or_the_eu_level(
    client: httpx.AsyncClient, world: Any
) -> None:
    admin, orgs = world["admin"], world["orgs"]
    stranger = str(uuid.uuid4())
    for items, field in (
        ([{"text": "Do it.", "addressees": [stranger]}], "recommendation_items.0.addressees.0"),
        ([{"text": "Do it.", "addressees": []}], "recommendation_items.0.addressees"),
        ([{"text": "Do it.", "addressees": ["the ministry"]}], "recommendation_items.0.addressees"),
    ):
        refused = await client.post(
            "/api/v1/study-visits", json=report(orgs, recommendation_items=items), headers=admin
        )
        assert refused.status_code == 422, refused.text
        assert any(f["field"].startswith(field) for f in refused.json()["fields"]), refused.text
    listed = await client.get("/api/v1/study-visits", headers=admin)
    assert listed.json()["items"] == []  # nothing stored

    created = await client.post("/api/v1/study-visits", json=report(orgs), headers=admin)
    items = created.json()["recommendation_items"]
    assert [i["status"] for i in items] == ["received", "received"]
    assert items[1]["addressees"] == [
        {"organisation_id": orgs["b"]["id"], "name": orgs["b"]["name"], "eu_level": False},
        {"organisation_id": None, "name": "EU level", "eu_level": True},
    ]
    # Editing the text of one item keeps the other's id (and so its follow-up).
    changed = [
        dict(items[0], addressees=[orgs["a"]["id"]]),
        {"text": "Fund it.", "addressees": ["EU"]},
    ]
    changed = [{"text": i["text"], "addressees": i["addressees"]} for i in changed]
    patched = await client.patch(
        f"/api/v1/study-visits/{created.json()['id']}",
        json={"recommendation_items": changed},
        headers=admin | {"If-Match": created.headers["etag"]},
    )
    assert patched.status_code == 200, patched.text
    after = patched.json()["recommendation_items"]
    assert after[0]["id"] == items[0]["id"] and after[1]["text"] == "Fund it."
    assert patched.json()["recommendations"] is None  # the free text stays the report's own


async def test_the_addressees_editors_or_the_national_point_follow_a_recommendation_up(
    client: httpx.AsyncClient, world: Any
) -> None:
    admin, orgs = world["admin"], world["orgs"]
    created = await client.post("/api/v1/study-visits", json=report(orgs), headers=admin)
    first = created.json()["recommendation_items"][0]
    status = f"/api/v1/recommendations/{first['id']}/status"
    early = await client.post(status, json={"status": "accepted"}, headers=admin)
    assert early.status_code == 409 and "published" in early.text  # a draft is not followed up

    published = await publish(client, admin, {**report(orgs), "title": "Published visit"})
    first, second = published.json()["recommendation_items"]
    status = f"/api/v1/recommendations/{first['id']}/status"
    for who in ("b", "author"):  # not an addressee's editor
        refused = await client.post(status, json={"status": "accepted"}, headers=world[who])
        assert refused.status_code == 403, refused.text
    bad = await client.post(status, json={"status": "done"}, headers=world["a"])
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "status"
    future = await client.post(
        status, json={"status": "accepted", "date": "2999-01-01"}, headers=world["a"]
    )
    assert future.status_code == 422 and future.json()["fields"][0]["field"] == "date"
    same = await client.post(status, json={"status": "received"}, headers=world["a"])
    assert same.status_code == 409

    accepted = await client.post(
        status,
        json={"status": "accepted", "note": "In the 2027 plan.", "date": "2026-05-02"},
        headers=world["a"],
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status_date"] == "2026-05-02"
    assert accepted.json()["history"][-1] == {
        "status": "accepted",
        "date": "2026-05-02",
        "note": "In the 2027 plan.",
    }
    report_now = await client.get(f"/api/v1/study-visits/{published.json()['id']}", headers=admin)
    assert report_now.json()["version"] > published.json()["version"]  # re-published
    declined = await client.post(
        f"/api/v1/recommendations/{second['id']}/status",
        json={"status": "declined"},
        headers=world["b"],
    )
    assert declined.status_code == 200

    of_a = await client.get(
        "/api/v1/recommendations", params={"addressee": orgs["a"]["id"]}, headers=world["author"]
    )
    assert [r["id"] for r in of_a.json()] == [first["id"]]  # the draft's are not listed
    open_eu = await client.get(
        "/api/v1/recommendations", params={"addressee": "EU", "open": True}, headers=admin
    )
    assert [r["text"] for r in open_eu.json()] == ["Fund a European network."]  # the draft's
    wrong = await client.get("/api/v1/recommendations", params={"addressee": "x"}, headers=admin)
    assert wrong.status_code == 422
    audit = await client.get(
        "/api/v1/audit-log", params={"entity_type": "recommendation"}, headers=admin
    )
    assert [e["action"] for e in audit.json()["items"]] == ["follow-up", "follow-up"]
    assert "In the 2027 plan" not in audit.text  # the note is not copied to the audit log

    followup = await client.get(
        f"/api/v1/study-visits/{published.json()['id']}/recommendations", headers=admin
    )
    notices = followup.json()["notices"]
    # A mail for each addressee organisation: B has no primary contact point.
    assert {n["name"] for n in notices} == {orgs["a"]["name"], orgs["b"]["name"]}


async def test_a_published_report_is_withdrawn_with_its_reason(
    client: httpx.AsyncClient, world: Any
) -> None:
    admin = world["admin"]
    published = await publish(client, admin, report(world["orgs"]))
    path = f"/api/v1/study-visits/{published.json()['id']}/withdraw"
    etag = {"If-Match": published.headers["etag"]}
    assert (await client.post(path, json={}, headers=admin | etag)).status_code == 422
    by_editor = await client.post(path, json={"reason": "Old."}, headers=world["a"] | etag)
    assert by_editor.status_code == 403
    withdrawn = await client.post(path, json={"reason": "Superseded."}, headers=admin | etag)
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"
    assert withdrawn.json()["withdrawn_reason"] == "Superseded."
    again = await client.post(
        path, json={"reason": "Again."}, headers=admin | {"If-Match": withdrawn.headers["etag"]}
    )
    assert again.status_code == 409
    gone = await client.get(f"/api/v1/study-visits/{published.json()['id']}", headers=world["a"])
    assert gone.status_code == 404  # others no longer read it


async def test_a_report_that_named_someone_is_withdrawn_with_its_text_erased(
    client: httpx.AsyncClient, world: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = world["admin"]
    named = "Kostas Dimitriou"
    body = report(
        world["orgs"],
        findings=f"{named} showed us the mentoring files.",
        participant_names=["Eleni Markou"],
    )
    body["recommendation_items"][0]["text"] = f"Ask {named} to train staff."
    published = await publish(client, admin, body)
    visit_id = published.json()["id"]
    path = f"/api/v1/study-visits/{visit_id}/withdraw"
    etag = {"If-Match": published.headers["etag"]}
    wrong = await client.post(
        path, json={"reason": "Named someone.", "reason_code": "gossip"}, headers=admin | etag
    )
    assert wrong.status_code == 422 and "reason_code" in wrong.text
    withdrawn = await client.post(
        path,
        json={"reason": f"It named {named}.", "reason_code": "personal_data"},
        headers=admin | etag,
    )
    assert withdrawn.status_code == 200, withdrawn.text
    now = (await client.get(f"/api/v1/study-visits/{visit_id}", headers=admin)).json()
    assert now["status"] == "withdrawn" and now["title"].startswith("[erased")
    assert now["findings"] is None and now["participant_names"] == []
    assert all(item["text"].startswith("[erased") for item in now["recommendation_items"])
    assert "Dimitriou" not in str({k: v for k, v in now.items() if k != "withdrawn_reason"})
    audit = await client.get(
        "/api/v1/audit-log",
        params={"entity_id": visit_id, "action": "withdraw"},
        headers=admin,
    )
    [entry] = audit.json()["items"]
    assert entry["detail"]["reason_code"] == "personal_data"
    assert "findings" in entry["detail"]["erased"] and "Dimitriou" not in audit.text
    # The federation's purge of every earlier body is queued after the tombstone.
    async with sessions() as session:
        topics = (
            await session.scalars(
                select(OutboxMessage.topic)
                .where(OutboxMessage.entity_id == visit_id)
                .order_by(OutboxMessage.id)
            )
        ).all()
    assert topics[-2:] == ["study_visit.changed", "study_visit.leaked"], topics


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)


async def test_the_form_writes_recommendation_rows_and_the_follow_up_page_changes_a_status(
    client: httpx.AsyncClient, world: Any
) -> None:
    admin, orgs = world["admin"], world["orgs"]
    created = await client.post(
        "/api/v1/study-visits", json=report(orgs, recommendation_items=[]), headers=admin
    )
    visit = created.json()
    form = await client.get("/sign-in")
    await client.post(
        "/sign-in",
        data={"email": "np@example.org", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
    )
    step = await client.get(f"/study-visits/{visit['id']}/edit/6")
    assert step.status_code == 200 and 'value="EU"' in step.text and orgs["b"]["name"] in step.text
    token = csrf_of(step.text)
    fields = {
        "csrf_token": token,
        "version": str(visit["version"]),
        "item_rows": "2",
        "recommendations": "Two things.",
        "recommendation_items.0.text": "Fund mentors.",
        "recommendation_items.0.addressees": [orgs["b"]["id"], "EU"],
        "recommendation_items.1.text": "",
        "go": "stay",
    }
    missing = dict(fields, **{"recommendation_items.0.addressees": []})
    refused = await client.post(f"/study-visits/{visit['id']}/edit/6", data=missing)
    assert (
        refused.status_code == 422 and 'id="err-recommendation_items-0-addressees"' in refused.text
    )
    assert "Fund mentors." in refused.text  # what was typed is kept
    saved = await client.post(f"/study-visits/{visit['id']}/edit/6", data=fields)
    assert saved.status_code == 303, saved.text
    again = await client.get(saved.headers["location"])
    assert re.search(rf'<option value="{orgs["b"]["id"]}" selected>', again.text)
    assert '<option value="EU" selected>' in again.text

    stored = await client.get(f"/api/v1/study-visits/{visit['id']}", headers=admin)
    [item] = stored.json()["recommendation_items"]
    assert [a["name"] for a in item["addressees"]] == [orgs["b"]["name"], "EU level"]
    await publish(client, admin, report(orgs, title="Another visit"))
    etag = {"If-Match": stored.headers["etag"]}
    path = f"/api/v1/study-visits/{visit['id']}"
    submitted = await client.post(f"{path}/submit", headers=admin | etag)
    await client.post(
        f"{path}/publish",
        json=factories.CONFIRMED,
        headers=admin | {"If-Match": submitted.headers["etag"]},
    )

    listing = await client.get("/followup", params={"addressee": orgs["b"]["id"]})
    assert listing.status_code == 200 and "Fund mentors." in listing.text
    page = await client.get(f"/followup/reports/{visit['id']}")
    assert page.status_code == 200 and 'id="notices"' in page.text
    post = f"/followup/recommendations/{item['id']}"
    bad = await client.post(post, data={"csrf_token": token, "status": "received"})
    assert bad.status_code == 422 and "received already" in bad.text
    done = await client.post(
        post, data={"csrf_token": token, "status": "implemented", "note": "Done in May."}
    )
    assert done.status_code == 303
    shown = await client.get(done.headers["location"])
    assert 'id="done"' in shown.text and "Done in May." in shown.text
    assert "Implemented" in shown.text


async def test_an_export_names_addressees_by_ref_and_imports_into_another_report(
    client: httpx.AsyncClient, world: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from node.core.auth import system_principal
    from node.core.tabular import Row
    from practices.study_visits import transfer

    admin, orgs = world["admin"], world["orgs"]
    ref = f"gr-a-{uuid.uuid4().hex[:6]}"
    await client.patch(
        f"/api/v1/organisations/{orgs['a']['id']}",
        json={"ref": ref},
        headers=admin | {"If-Match": '"1"'},
    )
    await client.post("/api/v1/study-visits", json=report(orgs), headers=admin)
    async with sessions() as session:
        [row] = await transfer.export_study_visits(session, with_participants=False)
    assert [i["addressees"] for i in row["recommendation_items"]] == [
        [ref],
        [orgs["b"]["id"], "EU"],
    ]
    row |= {"title": "The same visit, imported", "ref": None}
    async with sessions() as session:
        done = await transfer.import_study_visits(
            session, [Row(1, row, "study_visit")], by=system_principal("test")
        )
        await session.commit()
    assert not done.errors, done.errors
    listed = await client.get("/api/v1/recommendations", headers=admin)
    imported = [r for r in listed.json() if r["report_title"] == "The same visit, imported"]
    assert [[a["name"] for a in r["addressees"]] for r in imported] == [
        [orgs["a"]["name"]],
        [orgs["b"]["name"], "EU level"],
    ]
