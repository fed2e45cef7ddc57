"""Small builders for test data."""

import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from node.core.auth import hash_password, issue_token
from node.core.models import User, UserOrganisation

Headers = dict[str, str]
# The publisher's confirmation that the free text names no person the node cannot know, which
# a node that federates requires with every publish.
CONFIRMED = {"confirm_no_person": True}


async def make_user(
    sessions: async_sessionmaker[AsyncSession],
    role: str,
    *,
    organisations: list[uuid.UUID | str] = [],  # noqa: B006
    email: str | None = None,
    name: str | None = None,
) -> Headers:
    """A stored user with an API token; returns the headers that sign in as it."""
    async with sessions() as session:
        user = User(
            email=email or f"{role}-{uuid.uuid4().hex[:6]}@example.org",
            name=name or f"Test {role}",
            role=role,
            password_hash=hash_password("correct horse battery"),
        )
        session.add(user)
        await session.flush()
        for org_id in organisations:
            session.add(UserOrganisation(user_id=user.id, organisation_id=uuid.UUID(str(org_id))))
        token = await issue_token(session, user=user, name="test", expires_at=None)
        await session.commit()
    return {"Authorization": f"Bearer {token}"}


def organisation(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"Regional Probation Service {uuid.uuid4().hex[:6]}",
        "local_names": [{"language": "el", "name": "Υπηρεσία Επιμελητών Ανηλίκων"}],
        "kind": "probation",
        "sector": "governmental",
        "level": "regional",
        "country": "GR",
        "region": "Attica",
        "areas": ["rehabilitation", "reintegration"],
        "target_groups": ["juveniles_young_adults"],
        "services": ["supervision of community measures"],
        "languages": ["el", "en"],
    }
    return body | overrides


def contact(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Eleni Papadopoulou",
        "title": "Liaison officer",
        "email": "liaison@probation.example.org",
        "phones": [{"number": "210 555 0101", "type": "landline"}],
        "languages": ["el", "en"],
        "hours": "Mon–Fri 08:00–16:00",
        "is_primary": True,
    }
    return body | overrides


async def create_organisation(
    client: httpx.AsyncClient, admin: Headers, **overrides: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/organisations", json=organisation(**overrides), headers=admin
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def create_contact(
    client: httpx.AsyncClient, admin: Headers, organisation_id: str, **overrides: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/organisations/{organisation_id}/contact-points",
        json=contact(**overrides),
        headers=admin,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def practice(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "practice",
        "title": f"Mentoring after release {uuid.uuid4().hex[:6]}",
        "language": "en",
        "summary": "Mentors accompany released prisoners through their first year outside.",
        "description": "A social worker and a mentor meet the person weekly.",
        "intervention_types": ["mentoring", "after_care"],
        "process_focus": ["rehabilitation_reintegration"],
        "settings": ["post_release"],
        "target_groups": ["released_prisoners"],
        "country": "GR",
        "licence": "CC-BY-4.0",
    }
    return body | overrides


async def publish_practice(
    client: httpx.AsyncClient, admin: Headers, **overrides: Any
) -> dict[str, Any]:
    created = await client.post("/api/v1/practices", json=practice(**overrides), headers=admin)
    assert created.status_code == 201, created.text
    body = created.json()
    published = await client.post(
        f"/api/v1/practices/{body['id']}/publish",
        json=CONFIRMED,
        headers=admin | {"If-Match": created.headers["etag"]},
    )
    assert published.status_code == 200, published.text
    return dict(published.json())


async def search(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/practices/search", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())
