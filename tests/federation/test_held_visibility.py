"""A record the personal-data gate holds is seen only by signed-in users of its node, until an
administrator releases it or its editor fixes the text; editors review only the holds of their
own organisations' records."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation import keys
from node.core.settings import sync_url
from practices.search.meili import search_requests
from practices.search.port import SearchQuery
from tests.conftest import Database
from tests.factories import (
    CONFIRMED,
    Headers,
    create_contact,
    create_organisation,
    make_user,
    publish_practice,
)
from tests.federation.forgery import rows
from tests.federation.test_migrations import migrate

pytestmark = pytest.mark.anyio

LEAK = "Ask Joana Marques for the training materials."
CLEAN = "Ask the probation office for the training materials."


@dataclass
class Node:
    admin: Headers
    editor: Headers  # of the organisation responsible for the held practice
    stranger: Headers  # an editor of another organisation
    reader: Headers  # a signed-in practitioner
    own_org: str
    other_org: str


@pytest.fixture
async def node(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    signing_key: keys.SigningKey,
) -> Node:
    admin = await make_user(sessions, "admin")
    own = await create_organisation(client, admin, country="PT", name="Probation Lisbon")
    other = await create_organisation(client, admin, country="PT", name="Probation Porto")
    await create_contact(
        client, admin, own["id"], name="Joana Marques", email="jm@example.org", phones=[]
    )
    return Node(
        admin=admin,
        editor=await make_user(sessions, "editor", organisations=[own["id"]]),
        stranger=await make_user(sessions, "editor", organisations=[other["id"]]),
        reader=await make_user(sessions, "practitioner"),
        own_org=own["id"],
        other_org=other["id"],
    )


async def publish_two(client: httpx.AsyncClient, node: Node) -> tuple[dict[str, Any], str]:
    """A clean practice and a leaky tool of the same country; returns the tool and its hold id."""
    await publish_practice(client, node.admin, title="Clean mentoring", country="PT")
    links = [{"organisation_id": node.own_org, "role": "responsible"}]
    tool = await publish_practice(
        client,
        node.admin,
        kind="tool",
        title="Leaky mentoring toolkit",
        country="PT",
        description=LEAK,
        organisations=links,
    )
    [hold] = await queue(client, node.admin)
    assert hold["record_id"] == tool["id"] and hold["status"] == "held"
    return tool, str(hold["id"])


async def queue(client: httpx.AsyncClient, who: Headers) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/federation/holds", headers=who)
    assert response.status_code == 200, response.text
    return list(response.json())


async def seen(client: httpx.AsyncClient, who: Headers | None, practice_id: str) -> dict[str, Any]:
    """What a reader (None: anonymous) finds of a practice: by id, in the list, in search with
    and without words, and in the facet counts."""
    headers = who or {}
    got = await client.get(f"/api/v1/practices/{practice_id}", headers=headers)
    listed = (await client.get("/api/v1/practices", headers=headers)).json()["items"]
    by_word = (
        await client.get("/api/v1/practices/search", params={"q": "toolkit"}, headers=headers)
    ).json()
    browsed = (await client.get("/api/v1/practices/search", headers=headers)).json()
    kinds = {f["value"]: f["count"] for f in browsed["facets"]["kind"]}
    return {
        "status": got.status_code,
        "held": got.json().get("held") if got.status_code == 200 else None,
        "listed": [p["held"] for p in listed if p["id"] == practice_id],
        "found": [h["held"] for h in by_word["items"] if h["id"] == practice_id],
        "word_total": by_word["total"],
        "total": browsed["total"],
        "tools": kinds.get("tool", 0),
        "countries": {f["value"]: f["count"] for f in browsed["facets"]["country"]},
    }


HIDDEN: dict[str, Any] = {
    "status": 404,
    "held": None,
    "listed": [],
    "found": [],
    "word_total": 0,
    "total": 1,
    "tools": 0,
    "countries": {"PT": 1},
}
SHOWN_HELD = HIDDEN | {
    "status": 200,
    "held": True,
    "listed": [True],
    "found": [True],
    "word_total": 1,
    "total": 2,
    "tools": 1,
    "countries": {"PT": 2},
}
PUBLIC = SHOWN_HELD | {"held": False, "listed": [False], "found": [False]}


async def test_a_held_practice_is_hidden_from_anonymous_readers_and_marked_for_users(
    client: httpx.AsyncClient, node: Node
) -> None:
    tool, _ = await publish_two(client, node)
    assert await seen(client, None, tool["id"]) == HIDDEN
    assert await seen(client, node.reader, tool["id"]) == SHOWN_HELD
    # Holding is no edit: the version (the ETag a writer sends back) does not move.
    got = await client.get(f"/api/v1/practices/{tool['id']}", headers=node.reader)
    assert (
        got.json()["version"] == tool["version"] and got.headers["etag"] == f'"{tool["version"]}"'
    )


async def test_editors_review_only_their_organisations_holds(
    client: httpx.AsyncClient, node: Node
) -> None:
    tool, _ = await publish_two(client, node)
    assert [h["record_id"] for h in await queue(client, node.editor)] == [tool["id"]]
    assert await queue(client, node.stranger) == []
    forbidden = await client.get("/api/v1/federation/holds", headers=node.reader)
    assert forbidden.status_code == 403


async def test_an_editor_sees_the_holds_of_the_study_visits_their_organisation_organised(
    client: httpx.AsyncClient, node: Node
) -> None:
    body = {
        "title": "Visit to Athens",
        "language": "en",
        "organising_authority": {"organisation_id": node.own_org},
        "host_country": "GR",
        "start_date": "2025-09-22",
        "end_date": "2025-09-24",
        "purpose": "Exchange.",
        "delegation": [{"profession": "probation officer", "count": 3}],
        "participant_names": ["Ana Ferreira Sampaio"],
        "findings": "Ms SAMPAIO explained the method.",
    }
    created = await client.post("/api/v1/study-visits", json=body, headers=node.admin)
    assert created.status_code == 201, created.text
    url = f"/api/v1/study-visits/{created.json()['id']}"
    for action, version in (("submit", 1), ("publish", 2)):
        done = await client.post(
            f"{url}/{action}",
            json=CONFIRMED if action == "publish" else None,
            headers=node.admin | {"If-Match": f'"{version}"'},
        )
        assert done.status_code == 200, done.text
    [hold] = await queue(client, node.editor)
    assert hold["record_type"] == "study_visit" and hold["record_id"] == created.json()["id"]
    assert await queue(client, node.stranger) == []
    assert (await client.get(url)).status_code == 401  # study visits: signed-in users only


async def test_a_released_practice_is_public_again(client: httpx.AsyncClient, node: Node) -> None:
    tool, hold_id = await publish_two(client, node)
    refused = await client.post(
        f"/api/v1/federation/holds/{hold_id}/release",
        json={"justification": "Joana Marques is a public figure."},
        headers=node.editor,
    )
    assert refused.status_code == 403
    assert await seen(client, None, tool["id"]) == HIDDEN
    released = await client.post(
        f"/api/v1/federation/holds/{hold_id}/release",
        json={"justification": "Joana Marques agreed to be named as the programme's contact."},
        headers=node.admin,
    )
    assert released.status_code == 200, released.text
    assert await seen(client, None, tool["id"]) == PUBLIC
    assert await seen(client, node.reader, tool["id"]) == PUBLIC


async def test_a_practice_its_editor_fixes_is_public_again_and_only_they_may_fix_it(
    client: httpx.AsyncClient, node: Node
) -> None:
    tool, _ = await publish_two(client, node)
    url = f"/api/v1/practices/{tool['id']}"
    etag = {"If-Match": f'"{tool["version"]}"'}
    stranger = await client.patch(url, json={"description": CLEAN}, headers=node.stranger | etag)
    assert stranger.status_code == 403
    still_leaky = await client.patch(
        url, json={"description": f"{LEAK} Really."}, headers=node.editor | etag
    )
    assert still_leaky.status_code == 200, still_leaky.text
    assert await seen(client, None, tool["id"]) == HIDDEN  # the new version is held again
    [hold] = await queue(client, node.editor)
    assert hold["version"] == still_leaky.json()["version"]

    etag = {"If-Match": still_leaky.headers["etag"]}
    fixed = await client.patch(url, json={"description": CLEAN}, headers=node.editor | etag)
    assert fixed.status_code == 200, fixed.text
    assert await seen(client, None, tool["id"]) == PUBLIC
    assert await queue(client, node.editor) == []
    entries = (await client.get("/federation/v1/feed")).json()["entries"]
    shared = [e["payload"] for e in entries if e["payload"]["id"].endswith(tool["id"])]
    assert [p["version"] for p in shared] == [fixed.json()["version"]]


async def test_a_withdrawn_practice_is_no_longer_held(
    client: httpx.AsyncClient, node: Node
) -> None:
    tool, _ = await publish_two(client, node)
    url = f"/api/v1/practices/{tool['id']}"
    withdrawn = await client.post(
        f"{url}/withdraw",
        json={"reason": "It named a person."},
        headers=node.admin | {"If-Match": f'"{tool["version"]}"'},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert (await client.get(url, headers=node.reader)).json()["held"] is False
    assert await queue(client, node.admin) == []


def test_the_meilisearch_query_leaves_hidden_records_out_of_hits_and_every_count() -> None:
    hidden = uuid.UUID("00000000-0000-0000-0000-00000000000a")
    query = SearchQuery(filters={"kind": frozenset({"tool"})}, hidden=frozenset({hidden}))
    main, kind = search_requests(query, offset=0)
    assert main["filter"] == ['kind IN ["tool"]', f'id NOT IN ["{hidden}"]']
    assert kind["filter"] == [f'id NOT IN ["{hidden}"]']


def test_the_migration_holds_the_practices_with_an_open_hold(database: Database) -> None:
    db = database.fresh_copy()
    migrate(db, "0011", down=True)
    held, released, clean = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    practice = sa.table(
        "practice",
        *(sa.column(name, sa.String()) for name in ("kind", "title", "language", "summary")),
        *(sa.column(name, sa.String()) for name in ("evaluation_type", "review_label")),
        *(sa.column(name, sa.String()) for name in ("licence", "status")),
        *(sa.column(name, sa.JSON()) for name in ("translations", "outcomes", "links")),
        sa.column("is_sample", sa.Boolean()),
        sa.column("version", sa.Integer()),
        sa.column("id", sa.Uuid()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    hold = sa.table(
        "gate_hold",
        *(sa.column(name, sa.String()) for name in ("record_type", "status")),
        sa.column("record_id", sa.Uuid()),
        sa.column("version", sa.Integer()),
        sa.column("hits", sa.JSON()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    engine = sa.create_engine(sync_url(db))
    with engine.begin() as conn:
        for practice_id in (held, released, clean):
            conn.execute(
                practice.insert().values(
                    id=practice_id,
                    kind="practice",
                    title=f"T {practice_id}",
                    language="en",
                    summary="S",
                    evaluation_type="none",
                    review_label="self_reported",
                    licence="CC0-1.0",
                    status="published",
                    translations=[],
                    outcomes=[],
                    links=[],
                    is_sample=False,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
            )
        for record_id, status in ((held, "held"), (released, "released"), (clean, "superseded")):
            conn.execute(
                hold.insert().values(
                    record_type="practice",
                    record_id=record_id,
                    status=status,
                    version=1,
                    hits=[],
                    created_at=now,
                )
            )
    engine.dispose()
    migrate(db, "head")
    flags = {uuid.UUID(str(i)): bool(h) for i, h in rows(db, "SELECT id, held FROM practice")}
    assert flags == {held: True, released: False, clean: False}
