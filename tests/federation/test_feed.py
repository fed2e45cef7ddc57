"""A node's signed feed: what it publishes, how it is signed, and what the gate holds back."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation import keys
from federation.canonical import canonical
from federation.feed import body_digest
from federation.merkle import leaf_hash, root
from federation.projection import SharedPractice
from tests.factories import (
    CONFIRMED,
    Headers,
    create_organisation,
    make_user,
    publish_practice,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def admin(
    sessions: async_sessionmaker[AsyncSession], signing_key: keys.SigningKey
) -> Headers:
    return await make_user(sessions, "admin")


async def entries(
    client: httpx.AsyncClient, after: int = 0, limit: int = 100
) -> list[dict[str, Any]]:
    response = await client.get("/federation/v1/feed", params={"after": after, "limit": limit})
    assert response.status_code == 200, response.text
    return list(response.json()["entries"])


def verifies(envelope: dict[str, Any], public_key: str) -> bool:
    return keys.verify(public_key, canonical(envelope["payload"]), envelope["sig"])


async def test_a_published_practice_is_a_signed_entry_any_copy_can_verify(
    client: httpx.AsyncClient, admin: Headers, signing_key: keys.SigningKey
) -> None:
    made = await publish_practice(client, admin, title="Mentoring after release")
    [entry] = await entries(client)
    payload = entry["payload"]
    assert (payload["origin"], payload["seq"], payload["type"], payload["op"]) == (
        "PT",
        1,
        "practice",
        "upsert",
    )
    assert payload["id"] == f"PT:{made['id']}" and payload["version"] == made["version"]
    # Feed v2: the payload signs the body's hash; the body travels beside it.
    assert payload["v"] == 2 and entry["body"]["title"] == "Mentoring after release"
    assert payload["body_hash"] == body_digest(entry["body"]) and "body" not in payload
    published_keys = (await client.get("/federation/v1/keys")).json()["keys"]
    assert [k["key_id"] for k in published_keys] == [entry["key"]] == [signing_key.key_id]
    assert verifies(entry, published_keys[0]["public_key"])
    other = entry["body"] | {"title": "Other"}
    tampered = entry | {"payload": payload | {"body_hash": body_digest(other)}}
    assert not verifies(tampered, published_keys[0]["public_key"])
    assert body_digest(other) != payload["body_hash"]  # a body changed beside is caught too


async def test_edits_are_new_versions_withdrawals_are_tombstones_repeats_nothing(
    client: httpx.AsyncClient, admin: Headers, sessions: async_sessionmaker[AsyncSession]
) -> None:
    made = await publish_practice(client, admin, title="First title")
    url = f"/api/v1/practices/{made['id']}"
    edited = await client.patch(
        url, json={"title": "Second title"}, headers=admin | {"If-Match": f'"{made["version"]}"'}
    )
    same = await client.patch(
        url, json={"title": "Second title"}, headers=admin | {"If-Match": edited.headers["etag"]}
    )
    assert same.status_code == 200
    withdrawn = await client.post(
        f"{url}/withdraw",
        json={"reason": "Ended"},
        headers=admin | {"If-Match": edited.headers["etag"]},
    )
    assert withdrawn.status_code == 200
    items = await entries(client)
    feed = [e["payload"] for e in items]
    assert [(e["payload"]["op"], e["body"] and e["body"]["title"]) for e in items] == [
        ("upsert", "First title"),
        ("upsert", "Second title"),
        ("withdraw", None),
    ]
    assert [p["version"] for p in feed] == sorted({p["version"] for p in feed})
    assert {p["id"] for p in feed} == {f"PT:{made['id']}"}


async def test_the_checkpoint_signs_the_merkle_root_of_the_whole_feed(
    client: httpx.AsyncClient, admin: Headers, signing_key: keys.SigningKey
) -> None:
    for i in range(3):
        await publish_practice(client, admin, title=f"Practice {i}")
    signed = (await client.get("/federation/v1/checkpoint")).json()
    feed = await entries(client)
    leaves = [leaf_hash(canonical(e["payload"])) for e in feed]
    assert signed["checkpoint"]["size"] == 3
    assert signed["checkpoint"]["root"] == root(leaves).hex()
    assert keys.verify(signing_key.public_b64, canonical(signed["checkpoint"]), signed["sig"])


async def test_pages_follow_the_cursor(client: httpx.AsyncClient, admin: Headers) -> None:
    for i in range(5):
        await publish_practice(client, admin, title=f"Paged {i}")
    first = await client.get("/federation/v1/feed", params={"limit": 2})
    assert first.json()["next_after"] == 2
    rest = await entries(client, after=2, limit=10)
    assert [e["payload"]["seq"] for e in rest] == [3, 4, 5]


async def test_personal_data_in_a_practice_holds_it_until_fixed(
    client: httpx.AsyncClient, admin: Headers, sessions: async_sessionmaker[AsyncSession]
) -> None:
    org = await create_organisation(client, admin, country="PT", name="Probation Lisbon")
    contact = await client.post(
        f"/api/v1/organisations/{org['id']}/contact-points",
        headers=admin,
        json={"name": "Joana Marques", "email": "joana@example.org"},
    )
    assert contact.status_code == 201
    leaky = "Ask Joana Marques (joana@example.org, 213 456 789) for the materials."
    made = await publish_practice(client, admin, description=leaky)
    assert await entries(client) == []
    holds = (await client.get("/api/v1/federation/holds", headers=admin)).json()
    [hold] = holds
    found = {(h["detector"], leaky[h["start"] : h["end"]]) for h in hold["hits"]}
    assert ("an e-mail address", "joana@example.org") in found
    assert ("a phone number", "213 456 789") in found
    assert any(text == "Joana Marques" for _, text in found)
    assert {h["field"] for h in hold["hits"]} == {"description"}

    fixed = await client.patch(
        f"/api/v1/practices/{made['id']}",
        json={"description": "Ask the probation office for the materials."},
        headers=admin | {"If-Match": f'"{made["version"]}"'},
    )
    assert fixed.status_code == 200
    [entry] = await entries(client)
    assert "Joana" not in str(entry) and entry["payload"]["version"] == fixed.json()["version"]
    assert (await client.get("/api/v1/federation/holds", headers=admin)).json() == []


async def test_an_admin_may_release_a_false_alarm_with_a_recorded_reason(
    client: httpx.AsyncClient, admin: Headers, sessions: async_sessionmaker[AsyncSession]
) -> None:
    editor = await make_user(sessions, "editor")
    text = "Helpline of the programme: 213 456 789 (a public service number)."
    await publish_practice(client, admin, summary=text)
    [hold] = (await client.get("/api/v1/federation/holds", headers=admin)).json()
    refused = await client.post(
        f"/api/v1/federation/holds/{hold['id']}/release",
        json={"justification": "It is a public helpline."},
        headers=editor,
    )
    assert refused.status_code == 403
    released = await client.post(
        f"/api/v1/federation/holds/{hold['id']}/release",
        json={"justification": "It is the programme's public helpline."},
        headers=admin,
    )
    assert released.status_code == 200 and released.json()["status"] == "released"
    [entry] = await entries(client)
    assert entry["body"]["summary"] == text
    log = (
        await client.get("/api/v1/audit-log", headers=admin, params={"action": "release"})
    ).json()["items"]
    assert log[0]["detail"]["justification"] == "It is the programme's public helpline."


async def test_study_visits_travel_as_professions_and_counts_never_names(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    body = {
        "title": "Visit to Athens",
        "language": "en",
        "organising_authority": {"name": "DGRSP"},
        "host_country": "GR",
        "start_date": "2025-09-22",
        "end_date": "2025-09-24",
        "purpose": "Exchange.",
        "delegation": [{"profession": "probation officer", "count": 3}],
        "participant_names": ["Ana Ferreira Sampaio", "Rui Tavares Lobo"],
        "findings": "Post-release support starts before release.",
        "scope": "public",  # what anyone reads of the feed (a `network` body is withheld)
    }
    created = await client.post("/api/v1/study-visits", json=body, headers=admin)
    url = f"/api/v1/study-visits/{created.json()['id']}"
    await client.post(f"{url}/submit", headers=admin | {"If-Match": '"1"'})
    await client.post(f"{url}/publish", json=CONFIRMED, headers=admin | {"If-Match": '"2"'})
    [entry] = await entries(client)
    payload = entry["payload"]
    assert payload["type"] == "study_visit"
    assert entry["body"]["delegation"] == [{"profession": "probation officer", "count": 3}]
    assert "Ferreira" not in str(entry) and "participant" not in str(entry)

    leak = await client.post(
        "/api/v1/study-visits",
        headers=admin,
        json=body | {"findings": "Ms SAMPAIO explained the method."},
    )
    leak_url = f"/api/v1/study-visits/{leak.json()['id']}"
    await client.post(f"{leak_url}/submit", headers=admin | {"If-Match": '"1"'})
    await client.post(f"{leak_url}/publish", json=CONFIRMED, headers=admin | {"If-Match": '"2"'})
    assert len(await entries(client)) == 1
    [hold] = (await client.get("/api/v1/federation/holds", headers=admin)).json()
    assert hold["record_type"] == "study_visit" and hold["hits"][0]["field"] == "findings"


def test_the_projection_refuses_fields_outside_the_allow_list() -> None:
    from pydantic import ValidationError

    body = {
        "kind": "practice",
        "title": "T",
        "language": "en",
        "summary": "S",
        "evaluation": {"type": "none"},
        "review_label": "self_reported",
        "licence": "CC0-1.0",
    }
    assert SharedPractice.model_validate(body)
    for extra in (
        {"contact_email": "x@example.org"},
        {"participant_names": ["A"]},
        {"evaluation": {"type": "none", "assessor": "B"}},
    ):
        with pytest.raises(ValidationError):
            SharedPractice.model_validate(body | extra)


async def test_a_node_without_a_country_publishes_no_feed(
    client: httpx.AsyncClient, settings: object
) -> None:
    client._transport.app.state.settings = client._transport.app.state.settings.model_copy(  # type: ignore[attr-defined]
        update={"country": None}
    )
    response = await client.get("/federation/v1/feed")
    assert response.status_code == 503 and "INTEGRA_COUNTRY" in response.json()["detail"]


async def test_text_the_federation_would_refuse_is_held_with_its_field_not_lost(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    """The node stores what its editors write; what the federation schema refuses (here a
    right-to-left override hiding the order of characters) is held for review, by field, and
    never sent, instead of failing its job again and again without a word."""
    await publish_practice(client, admin, description="Mentoring \u202eesaeler retfa")
    assert await entries(client) == []
    [hold] = (await client.get("/api/v1/federation/holds", headers=admin)).json()
    assert [(h["detector"], h["field"]) for h in hold["hits"]] == [("not shareable", "description")]
