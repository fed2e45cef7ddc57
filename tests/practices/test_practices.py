"""Practices and study-visit reports: who sees and does what, and the workflows."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import CONFIRMED, create_organisation, make_user, practice, publish_practice

pytestmark = pytest.mark.anyio


@pytest.fixture
async def world(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, Any]:
    admin = await make_user(sessions, "admin")
    mine = await create_organisation(client, admin, name="Editor's NGO")
    other = await create_organisation(client, admin, name="Someone else's NGO")
    return {
        "admin": admin,
        "mine": mine,
        "other": other,
        "editor": await make_user(sessions, "editor", organisations=[mine["id"]]),
        "practitioner": await make_user(sessions, "practitioner"),
        "colleague": await make_user(sessions, "practitioner"),
    }


def by(org: dict[str, Any]) -> list[dict[str, str]]:
    return [{"organisation_id": org["id"], "role": "responsible"}]


async def test_editors_draft_for_their_own_organisations_and_admins_publish(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    editor = world["editor"]
    refused = await client.post(
        "/api/v1/practices", headers=editor, json=practice(organisations=by(world["other"]))
    )
    assert refused.status_code == 403
    draft = await client.post(
        "/api/v1/practices", headers=editor, json=practice(organisations=by(world["mine"]))
    )
    assert draft.status_code == 201 and draft.json()["status"] == "draft"
    url = f"/api/v1/practices/{draft.json()['id']}"

    submitted = await client.post(f"{url}/submit", headers=editor | {"If-Match": '"1"'})
    assert submitted.status_code == 200 and submitted.json()["status"] == "in_review"
    self_publish = await client.post(
        f"{url}/publish", json=CONFIRMED, headers=editor | {"If-Match": '"2"'}
    )
    assert self_publish.status_code == 403
    published = await client.post(
        f"{url}/publish", json=CONFIRMED, headers=world["admin"] | {"If-Match": '"2"'}
    )
    assert published.status_code == 200 and published.json()["published_at"]
    late_edit = await client.patch(
        url, json={"title": "Changed"}, headers=editor | {"If-Match": '"3"'}
    )
    assert late_edit.status_code == 403  # published: the National Point's to change
    again = await client.post(f"{url}/submit", headers=editor | {"If-Match": '"3"'})
    assert again.status_code == 403


async def test_anonymous_visitors_see_published_practices_only(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    shown = await publish_practice(client, world["admin"], title="Visible")
    hidden = await client.post(
        "/api/v1/practices", headers=world["admin"], json=practice(title="Hidden draft")
    )
    hidden_id = hidden.json()["id"]
    assert (await client.get(f"/api/v1/practices/{hidden_id}")).status_code == 404
    assert (await client.get(f"/api/v1/practices/{shown['id']}")).status_code == 200
    listed = (await client.get("/api/v1/practices", params={"status": "draft"})).json()
    assert listed["items"] == []
    signed = await client.get(f"/api/v1/practices/{hidden_id}", headers=world["practitioner"])
    assert signed.status_code == 200


async def test_a_withdrawal_needs_a_reason_and_a_published_practice(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    made = await publish_practice(client, world["admin"])
    url = f"/api/v1/practices/{made['id']}/withdraw"
    headers = world["admin"] | {"If-Match": f'"{made["version"]}"'}
    assert (await client.post(url, json={}, headers=headers)).status_code == 422
    assert (await client.post(url, json={"reason": "Ended"}, headers=headers)).status_code == 200
    twice = await client.post(
        url,
        json={"reason": "Again"},
        headers=world["admin"] | {"If-Match": f'"{made["version"] + 1}"'},
    )
    assert twice.status_code == 409


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"licence": "GPL"}, "licence"),
        ({"kind": "recipe"}, "kind"),
        (
            {
                "evaluation": {
                    "type": "none",
                    "outcomes": [{"outcome": "Recidivism", "rating": "effective", "source": "x"}],
                }
            },
            "evaluation",
        ),
        (
            {
                "evaluation": {
                    "type": "experimental",
                    "outcomes": [{"outcome": "Recidivism", "rating": "magic", "source": "x"}],
                }
            },
            "evaluation.outcomes.0.rating",
        ),
        (
            {"organisations": [{"organisation_id": "00000000-0000-0000-0000-000000000001"}]},
            "organisations.0.organisation_id",
        ),
        ({"start_date": "2020-01-01", "end_date": "2019-01-01"}, "body"),
    ],
)
async def test_practice_validation_names_the_field(
    client: httpx.AsyncClient, world: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    response = await client.post(
        "/api/v1/practices", json=practice(**change), headers=world["admin"]
    )
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["field"] == field


def visit(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Study visit to the support pairs in Lyon",
        "language": "en",
        "organising_authority": {"name": "Ministry of Citizen Protection"},
        "host_country": "FR",
        "start_date": "2025-05-12",
        "end_date": "2025-05-14",
        "purpose": "Learn how support pairs work with probation services.",
        "delegation": [{"profession": "probation officer", "count": 3}],
        "participant_names": ["Eleni Papadaki", "Nikos Stavridis"],
        "findings": "Pairs of an educator and a psychologist meet weekly.",
    }
    return body | overrides


async def test_a_study_visit_report_goes_from_draft_to_published(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    author, admin = world["practitioner"], world["admin"]
    created = await client.post("/api/v1/study-visits", json=visit(), headers=author)
    assert created.status_code == 201
    url = f"/api/v1/study-visits/{created.json()['id']}"

    assert (await client.get(url, headers=world["colleague"])).status_code == 404  # a draft
    submitted = await client.post(f"{url}/submit", headers=author | {"If-Match": '"1"'})
    assert submitted.json()["status"] == "submitted"
    no_reason = await client.post(f"{url}/request-changes", headers=admin | {"If-Match": '"2"'})
    assert no_reason.status_code == 422
    returned = await client.post(
        f"{url}/request-changes",
        json={"comment": "Add the programme"},
        headers=admin | {"If-Match": '"2"'},
    )
    assert returned.json()["status"] == "changes_requested"
    assert returned.json()["comments"][0]["body"] == "Add the programme"
    edited = await client.patch(
        url, json={"programme": "Day 1: briefing."}, headers=author | {"If-Match": '"3"'}
    )
    assert edited.status_code == 200
    await client.post(f"{url}/submit", headers=author | {"If-Match": '"4"'})
    author_publish = await client.post(
        f"{url}/publish", json=CONFIRMED, headers=author | {"If-Match": '"5"'}
    )
    assert author_publish.status_code == 403
    published = await client.post(
        f"{url}/publish", json=CONFIRMED, headers=admin | {"If-Match": '"5"'}
    )
    assert published.json()["status"] == "published"

    seen = await client.get(url, headers=world["colleague"])
    assert seen.status_code == 200 and seen.json()["participant_names"]
    assert (await client.get(url)).status_code == 401  # never anonymous
    reads = await client.get(
        "/api/v1/audit-log",
        headers=admin,
        params={"entity_id": created.json()["id"], "action": "read"},
    )
    assert [r["actor"][:13] for r in reads.json()["items"]] == ["practitioner-"]


async def test_study_visit_validation(client: httpx.AsyncClient, world: dict[str, Any]) -> None:
    author = world["practitioner"]
    for change, field in (
        ({"delegation": []}, "delegation"),
        ({"delegation": [{"profession": "judge", "count": 0}]}, "delegation.0.count"),
        (
            {"observed_practice_ids": ["00000000-0000-0000-0000-000000000002"]},
            "observed_practice_ids.0",
        ),
        (
            {"organising_authority": {"name": "A", "organisation_id": world["mine"]["id"]}},
            "organising_authority",
        ),
    ):
        response = await client.post("/api/v1/study-visits", json=visit(**change), headers=author)
        assert response.status_code == 422, change
        assert response.json()["fields"][0]["field"] == field, response.json()


@pytest.mark.parametrize(
    "body",
    [
        {"intervention_types": None},
        {"organisations": None},
        {"translations": None},
        {"links": None},
        {"review_label": None},
        {"title": None},
        {"evaluation": None},
    ],
)
async def test_nulls_in_a_practice_patch_are_422_naming_the_field(
    client: httpx.AsyncClient, world: dict[str, Any], body: dict[str, Any]
) -> None:
    created = await client.post("/api/v1/practices", json=practice(), headers=world["admin"])
    response = await client.patch(
        f"/api/v1/practices/{created.json()['id']}",
        json=body,
        headers=world["admin"] | {"If-Match": '"1"'},
    )
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["field"] == next(iter(body))


async def test_an_editor_cannot_hand_a_practice_to_another_organisation(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    editor, mine, other = world["editor"], world["mine"], world["other"]
    as_funder = [
        {"organisation_id": other["id"], "role": "responsible"},
        {"organisation_id": mine["id"], "role": "funder"},
    ]
    refused = await client.post(
        "/api/v1/practices", headers=editor, json=practice(organisations=as_funder)
    )
    assert refused.status_code == 403
    draft = await client.post(
        "/api/v1/practices", headers=editor, json=practice(organisations=by(mine))
    )
    hijack = await client.patch(
        f"/api/v1/practices/{draft.json()['id']}",
        json={"organisations": by(other)},
        headers=editor | {"If-Match": '"1"'},
    )
    assert hijack.status_code == 403
    kept = await client.get(f"/api/v1/practices/{draft.json()['id']}", headers=editor)
    assert kept.json()["organisations"][0]["organisation_id"] == mine["id"]


async def test_review_comments_stay_between_the_author_and_the_national_point(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    author, admin = world["practitioner"], world["admin"]
    created = await client.post("/api/v1/study-visits", json=visit(), headers=author)
    url = f"/api/v1/study-visits/{created.json()['id']}"
    await client.post(
        f"{url}/comments", json={"comment": "A. Secretname asked not to be named"}, headers=author
    )
    await client.post(f"{url}/submit", headers=author | {"If-Match": '"1"'})
    await client.post(f"{url}/publish", json=CONFIRMED, headers=admin | {"If-Match": '"2"'})
    assert (await client.get(url, headers=author)).json()["comments"]
    seen_by_colleague = await client.get(url, headers=world["colleague"])
    assert seen_by_colleague.json()["comments"] == []
    assert "Secretname" not in seen_by_colleague.text


async def test_too_many_translations_are_refused(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    translations = [{"language": "fr", "title": f"T{i}"} for i in range(31)]
    response = await client.post(
        "/api/v1/practices", headers=world["admin"], json=practice(translations=translations)
    )
    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "translations"
