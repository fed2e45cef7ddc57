"""Who may see and change what. Each boundary here fails if its check is removed."""

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from node.core.models import ApiToken, User
from tests.factories import Headers, create_contact, create_organisation, make_user, organisation

pytestmark = pytest.mark.anyio

CONTACT_VALUES = ("Eleni Papadopoulou", "liaison@probation.example.org", "+302105550101")


@pytest.fixture
async def world(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, Any]:
    """Two organisations, a contact point in the first, and one user of each role."""
    admin = await make_user(sessions, "admin")
    mine = await create_organisation(client, admin, name="Assigned Probation Office")
    other = await create_organisation(client, admin, name="Other Prison")
    contact = await create_contact(client, admin, mine["id"])
    return {
        "admin": admin,
        "mine": mine,
        "other": other,
        "contact": contact,
        "editor": await make_user(sessions, "editor", organisations=[mine["id"]]),
        "practitioner": await make_user(sessions, "practitioner"),
    }


def carries_contact_data(response: httpx.Response) -> bool:
    return any(value in response.text for value in CONTACT_VALUES)


# --- anonymous ----------------------------------------------------------------------------


async def test_anonymous_reads_organisations_without_any_contact_data(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    org_id = world["mine"]["id"]
    plain = await client.get(f"/api/v1/organisations/{org_id}")
    assert plain.status_code == 200 and "contact_points" not in plain.json()
    listed = await client.get("/api/v1/organisations")
    assert listed.status_code == 200 and not carries_contact_data(listed)
    assert all("contact_points" not in o for o in listed.json()["items"])
    embedded = await client.get(f"/api/v1/organisations/{org_id}?include=contact_points")
    assert embedded.status_code == 401 and not carries_contact_data(embedded)


async def test_anonymous_cannot_read_contact_points(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    one = await client.get(f"/api/v1/contact-points/{world['contact']['id']}")
    many = await client.get(f"/api/v1/organisations/{world['mine']['id']}/contact-points")
    assert one.status_code == 401 and not carries_contact_data(one)
    assert many.status_code == 401 and not carries_contact_data(many)


async def test_anonymous_reads_protocols(client: httpx.AsyncClient, world: dict[str, Any]) -> None:
    created = await client.post(
        "/api/v1/protocols",
        json={
            "title": "Memorandum",
            "country": "GR",
            "parties": [
                {"organisation_id": world["mine"]["id"], "role": "lead"},
                {"organisation_id": world["other"]["id"]},
            ],
        },
        headers=world["admin"],
    )
    assert created.status_code == 201
    assert (await client.get(f"/api/v1/protocols/{created.json()['id']}")).status_code == 200


async def test_anonymous_cannot_write(client: httpx.AsyncClient, world: dict[str, Any]) -> None:
    assert (await client.post("/api/v1/organisations", json=organisation())).status_code == 401
    patch = await client.patch(
        f"/api/v1/organisations/{world['mine']['id']}",
        json={"region": "x"},
        headers={"If-Match": '"1"'},
    )
    assert patch.status_code == 401


async def test_a_bad_token_is_refused_not_treated_as_anonymous(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/v1/organisations", headers={"Authorization": "Bearer ixt_not-a-real-token"}
    )
    assert response.status_code == 401


# --- practitioner -------------------------------------------------------------------------


async def test_practitioner_reads_contact_points(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    who = world["practitioner"]
    one = await client.get(f"/api/v1/contact-points/{world['contact']['id']}", headers=who)
    embedded = await client.get(
        f"/api/v1/organisations/{world['mine']['id']}?include=contact_points", headers=who
    )
    assert one.status_code == 200 and one.json()["email"] == "liaison@probation.example.org"
    assert one.json()["phones"][0]["number"] == "+302105550101"
    assert [c["id"] for c in embedded.json()["contact_points"]] == [world["contact"]["id"]]


async def test_practitioner_cannot_write(client: httpx.AsyncClient, world: dict[str, Any]) -> None:
    who = world["practitioner"]
    patch = await client.patch(
        f"/api/v1/organisations/{world['mine']['id']}",
        json={"region": "x"},
        headers=who | {"If-Match": '"1"'},
    )
    add = await client.post(
        f"/api/v1/organisations/{world['mine']['id']}/contact-points",
        json={"title": "Desk", "email": "desk@example.org"},
        headers=who,
    )
    assert patch.status_code == 403 and add.status_code == 403


# --- editor -------------------------------------------------------------------------------


async def test_editor_edits_its_own_organisation_only(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    who = world["editor"]
    own = await client.patch(
        f"/api/v1/organisations/{world['mine']['id']}",
        json={"region": "Crete"},
        headers=who | {"If-Match": '"1"'},
    )
    other = await client.patch(
        f"/api/v1/organisations/{world['other']['id']}",
        json={"region": "Crete"},
        headers=who | {"If-Match": '"1"'},
    )
    assert own.status_code == 200
    assert other.status_code == 403
    assert (await client.get(f"/api/v1/organisations/{world['other']['id']}")).json()[
        "region"
    ] == "Attica"


async def test_editor_cannot_add_organisations(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    response = await client.post(
        "/api/v1/organisations", json=organisation(), headers=world["editor"]
    )
    assert response.status_code == 403


async def test_editor_manages_contact_points_of_its_organisation_only(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    who = world["editor"]
    body = {"title": "Night desk", "phones": [{"number": "+30 210 555 0199"}]}
    own = await client.post(
        f"/api/v1/organisations/{world['mine']['id']}/contact-points", json=body, headers=who
    )
    other = await client.post(
        f"/api/v1/organisations/{world['other']['id']}/contact-points", json=body, headers=who
    )
    assert own.status_code == 201 and other.status_code == 403


async def test_editor_records_protocols_only_where_its_organisation_is_a_party(
    client: httpx.AsyncClient, world: dict[str, Any], sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = world["admin"]
    third = await create_organisation(client, admin, name="Third")
    parties_with = [{"organisation_id": world["mine"]["id"]}, {"organisation_id": third["id"]}]
    parties_without = [{"organisation_id": world["other"]["id"]}, {"organisation_id": third["id"]}]
    ok = await client.post(
        "/api/v1/protocols",
        headers=world["editor"],
        json={"title": "Ours", "country": "GR", "parties": parties_with},
    )
    refused = await client.post(
        "/api/v1/protocols",
        headers=world["editor"],
        json={"title": "Theirs", "country": "GR", "parties": parties_without},
    )
    assert ok.status_code == 201 and refused.status_code == 403


# --- admin --------------------------------------------------------------------------------


async def test_only_admins_read_the_audit_log(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    assert (await client.get("/api/v1/audit-log")).status_code == 401
    assert (await client.get("/api/v1/audit-log", headers=world["practitioner"])).status_code == 403
    assert (await client.get("/api/v1/audit-log", headers=world["editor"])).status_code == 403
    assert (await client.get("/api/v1/audit-log", headers=world["admin"])).status_code == 200


# --- audit --------------------------------------------------------------------------------


async def audit_entries(
    client: httpx.AsyncClient, admin: Headers, **params: str
) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/audit-log", params=params, headers=admin)
    assert response.status_code == 200
    return list(response.json()["items"])


async def test_every_read_of_a_contact_point_is_audited(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    contact_id = world["contact"]["id"]
    who = world["practitioner"]
    await client.get(f"/api/v1/contact-points/{contact_id}", headers=who)
    await client.get(f"/api/v1/organisations/{world['mine']['id']}/contact-points", headers=who)
    await client.get(
        f"/api/v1/organisations/{world['mine']['id']}?include=contact_points", headers=who
    )

    reads = await audit_entries(client, world["admin"], entity_id=contact_id, action="read")

    assert len(reads) == 3
    assert all(r["actor"].startswith("practitioner-") and r["actor_id"] for r in reads)


async def test_writes_are_audited_without_copying_personal_data(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    contact_id = world["contact"]["id"]
    update = await client.patch(
        f"/api/v1/contact-points/{contact_id}",
        json={"email": "new.liaison@example.org"},
        headers=world["editor"] | {"If-Match": '"1"'},
    )
    assert update.status_code == 200
    erase = await client.delete(
        f"/api/v1/contact-points/{contact_id}", headers=world["editor"] | {"If-Match": '"2"'}
    )
    assert erase.status_code == 204
    entries = await audit_entries(client, world["admin"], entity_id=contact_id)
    assert [e["action"] for e in entries] == ["erase", "update", "create"]
    assert entries[1]["detail"]["fields"] == ["email"]
    log = (await client.get("/api/v1/audit-log", headers=world["admin"])).text
    assert "new.liaison" not in log and not any(v in log for v in CONTACT_VALUES)
    gone = await client.get(f"/api/v1/contact-points/{contact_id}", headers=world["admin"])
    assert gone.status_code == 404


async def test_organisation_writes_name_the_actor_and_fields(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    await client.patch(
        f"/api/v1/organisations/{world['mine']['id']}",
        json={"region": "Crete", "areas": ["training"]},
        headers=world["editor"] | {"If-Match": '"1"'},
    )
    entries = await audit_entries(client, world["admin"], entity_id=world["mine"]["id"])
    assert entries[0]["action"] == "update"
    assert entries[0]["actor"].startswith("editor-")
    assert sorted(entries[0]["detail"]["fields"]) == ["areas", "region"]


# --- contact point rules ------------------------------------------------------------------


async def test_contact_points_need_a_way_to_reach_them(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    url = f"/api/v1/organisations/{world['mine']['id']}/contact-points"
    no_channel = await client.post(url, json={"title": "Desk"}, headers=world["admin"])
    bad_phone = await client.post(
        url, json={"title": "Desk", "phones": [{"number": "12"}]}, headers=world["admin"]
    )
    bad_email = await client.post(
        url, json={"title": "Desk", "email": "desk@"}, headers=world["admin"]
    )
    assert no_channel.status_code == 422
    assert (
        bad_phone.status_code == 422 and bad_phone.json()["fields"][0]["field"] == "phones.0.number"
    )
    assert bad_email.status_code == 422 and bad_email.json()["fields"][0]["field"] == "email"


async def test_contact_point_update_needs_the_current_etag(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    url = f"/api/v1/contact-points/{world['contact']['id']}"
    await client.patch(url, json={"hours": "24/7"}, headers=world["admin"] | {"If-Match": '"1"'})
    stale = await client.patch(
        url, json={"hours": "never"}, headers=world["admin"] | {"If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert (await client.get(url, headers=world["admin"])).json()["hours"] == "24/7"


# --- secrets at rest ----------------------------------------------------------------------


async def test_passwords_and_tokens_are_stored_hashed(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await make_user(sessions, "practitioner", email="hashed@example.org")
    token = headers["Authorization"].removeprefix("Bearer ")
    async with sessions() as session:
        user = await session.scalar(select(User).where(User.email == "hashed@example.org"))
        stored = (await session.scalars(select(ApiToken.token_hash))).all()
    assert user is not None and user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    assert "correct horse battery" not in user.password_hash
    assert token not in stored and all(len(h) == 64 for h in stored)


async def test_login_issues_a_token_that_works(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await make_user(sessions, "practitioner", email="login@example.org")
    wrong = await client.post(
        "/api/v1/auth/token", json={"email": "login@example.org", "password": "nope"}
    )
    right = await client.post(
        "/api/v1/auth/token",
        json={"email": "Login@Example.org", "password": "correct horse battery"},
    )
    assert wrong.status_code == 401
    assert right.status_code == 200 and right.json()["expires_at"]
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {right.json()['token']}"}
    )
    assert me.json()["email"] == "login@example.org" and me.json()["role"] == "practitioner"


async def test_editor_cannot_archive_or_touch_contacts_of_other_organisations(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    admin, editor = world["admin"], world["editor"]
    theirs = await create_contact(
        client, admin, world["other"]["id"], email="desk@other.example.org"
    )
    archive = await client.post(
        f"/api/v1/organisations/{world['other']['id']}/archive",
        headers=editor | {"If-Match": '"1"'},
    )
    update = await client.patch(
        f"/api/v1/contact-points/{theirs['id']}",
        json={"hours": "never"},
        headers=editor | {"If-Match": '"1"'},
    )
    erase = await client.delete(
        f"/api/v1/contact-points/{theirs['id']}", headers=editor | {"If-Match": '"1"'}
    )
    assert (archive.status_code, update.status_code, erase.status_code) == (403, 403, 403)
    still = await client.get(f"/api/v1/contact-points/{theirs['id']}", headers=admin)
    assert still.status_code == 200 and still.json()["hours"] == "Mon–Fri 08:00–16:00"
    own_archive = await client.post(
        f"/api/v1/organisations/{world['mine']['id']}/archive", headers=editor | {"If-Match": '"1"'}
    )
    assert own_archive.status_code == 200


async def test_editor_edits_protocols_only_where_its_organisation_is_a_party(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    admin = world["admin"]
    third = await create_organisation(client, admin, name="Third")
    theirs = await client.post(
        "/api/v1/protocols",
        headers=admin,
        json={
            "title": "Theirs",
            "country": "GR",
            "parties": [
                {"organisation_id": world["other"]["id"]},
                {"organisation_id": third["id"]},
            ],
        },
    )
    ours = await client.post(
        "/api/v1/protocols",
        headers=admin,
        json={
            "title": "Ours",
            "country": "GR",
            "parties": [{"organisation_id": world["mine"]["id"]}, {"organisation_id": third["id"]}],
        },
    )
    headers = world["editor"] | {"If-Match": '"1"'}
    refused = await client.patch(
        f"/api/v1/protocols/{theirs.json()['id']}", json={"status": "in_force"}, headers=headers
    )
    allowed = await client.patch(
        f"/api/v1/protocols/{ours.json()['id']}", json={"status": "in_force"}, headers=headers
    )
    assert refused.status_code == 403 and allowed.status_code == 200


@pytest.mark.parametrize("spoil", ["expired", "revoked", "deactivated"])
async def test_expired_revoked_or_deactivated_credentials_are_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], spoil: str
) -> None:
    from datetime import timedelta

    from node.core.db import utcnow

    headers = await make_user(sessions, "practitioner", email=f"{spoil}@example.org")
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
    async with sessions() as session:
        user = await session.scalar(select(User).where(User.email == f"{spoil}@example.org"))
        assert user is not None
        token = await session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
        assert token is not None
        if spoil == "expired":
            token.expires_at = utcnow() - timedelta(seconds=1)
        elif spoil == "revoked":
            token.revoked_at = utcnow()
        else:
            user.is_active = False
        await session.commit()
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 401


async def test_editor_cannot_hand_a_protocol_over_to_organisations_it_does_not_manage(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    third = await create_organisation(client, world["admin"], name="Third")
    created = await client.post(
        "/api/v1/protocols",
        headers=world["editor"],
        json={
            "title": "Ours",
            "country": "GR",
            "parties": [{"organisation_id": world["mine"]["id"]}, {"organisation_id": third["id"]}],
        },
    )
    assert created.status_code == 201
    hijack = await client.patch(
        f"/api/v1/protocols/{created.json()['id']}",
        json={
            "parties": [
                {"organisation_id": world["other"]["id"]},
                {"organisation_id": third["id"]},
            ],
            "status": "in_force",
        },
        headers=world["editor"] | {"If-Match": '"1"'},
    )
    assert hijack.status_code == 403
    stored = (await client.get(f"/api/v1/protocols/{created.json()['id']}")).json()
    assert (
        stored["status"] == "draft"
        and stored["parties"][0]["organisation_id"] == world["mine"]["id"]
    )


async def test_a_contact_patch_that_changes_nothing_is_still_an_audited_read(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    contact_id = world["contact"]["id"]
    response = await client.patch(
        f"/api/v1/contact-points/{contact_id}",
        json={},
        headers=world["editor"] | {"If-Match": '"1"'},
    )
    assert response.status_code == 200
    reads = await audit_entries(client, world["admin"], entity_id=contact_id, action="read")
    assert len(reads) == 1 and reads[0]["actor"].startswith("editor-")
