"""The publisher's confirmation: on a node that federates, publishing a practice or a
study-visit report needs the publisher's word that the free text names no person the node
cannot know (the gate finds only those it knows). Without it nothing changes; with it, the
audit entry of the publish records it. A node that does not federate does not ask."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Select, create_engine, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from node.app import create_app
from node.core.auth import system_principal
from node.core.models import AuditEntry
from node.core.settings import Settings, sync_url
from practices.models import Practice
from practices.study_visits import transfer as visit_transfer
from tests.conftest import Database, run_cli
from tests.factories import CONFIRMED, Headers, make_user, practice

pytestmark = pytest.mark.anyio

CONFIRM = "confirm_no_person"


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    """A Portuguese node: it federates."""
    return Settings(database_url=database.url, data_dir=tmp_path, country="PT")


@pytest.fixture
async def admin(sessions: async_sessionmaker[AsyncSession]) -> Headers:
    return await make_user(sessions, "admin", email="np-admin@example.org")


def visit() -> dict[str, Any]:
    return {
        "title": "Study visit to the support pairs in Lisbon",
        "language": "en",
        "organising_authority": {"name": "Ministry of Justice"},
        "host_country": "PT",
        "start_date": "2025-05-12",
        "end_date": "2025-05-14",
        "purpose": "Learn how support pairs work with probation services.",
        "delegation": [{"profession": "probation officer", "count": 3}],
        "findings": "Pairs of an educator and a psychologist meet weekly.",
    }


async def draft(client: httpx.AsyncClient, admin: Headers) -> str:
    created = await client.post("/api/v1/practices", json=practice(country="PT"), headers=admin)
    assert created.status_code == 201, created.text
    return f"/api/v1/practices/{created.json()['id']}"


async def submitted_visit(client: httpx.AsyncClient, admin: Headers) -> str:
    created = await client.post("/api/v1/study-visits", json=visit(), headers=admin)
    url = f"/api/v1/study-visits/{created.json()['id']}"
    submitted = await client.post(f"{url}/submit", headers=admin | {"If-Match": '"1"'})
    assert submitted.status_code == 200, submitted.text
    return url


async def publishes(client: httpx.AsyncClient, admin: Headers, entity_id: str) -> list[Any]:
    response = await client.get(
        "/api/v1/audit-log", params={"entity_id": entity_id, "action": "publish"}, headers=admin
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def refused_for_want_of_confirmation(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "Validation failed"
    [field] = body["fields"]
    assert field["field"] == CONFIRM and "names no person" in field["message"]
    assert '{"confirm_no_person": true}' in field["message"]


@pytest.mark.parametrize("sent", [None, {CONFIRM: False}, {}])
async def test_a_publish_without_the_confirmation_is_refused_and_nothing_changes(
    client: httpx.AsyncClient, admin: Headers, sent: dict[str, Any] | None
) -> None:
    url = await draft(client, admin)
    refused_for_want_of_confirmation(
        await client.post(f"{url}/publish", json=sent, headers=admin | {"If-Match": '"1"'})
    )
    kept = (await client.get(url, headers=admin)).json()
    assert (kept["status"], kept["version"], kept["published_at"]) == ("draft", 1, None)
    assert (await client.get(url)).status_code == 404  # not public
    assert await publishes(client, admin, url.rsplit("/", 1)[1]) == []

    report = await submitted_visit(client, admin)
    refused_for_want_of_confirmation(
        await client.post(f"{report}/publish", json=sent, headers=admin | {"If-Match": '"2"'})
    )
    kept = (await client.get(report, headers=admin)).json()
    assert (kept["status"], kept["version"], kept["published_at"]) == ("submitted", 2, None)


async def test_the_confirmation_is_recorded_with_the_publish(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    url = await draft(client, admin)
    published = await client.post(
        f"{url}/publish", json=CONFIRMED, headers=admin | {"If-Match": '"1"'}
    )
    assert published.status_code == 200, published.text
    [entry] = await publishes(client, admin, published.json()["id"])
    assert entry["actor"] == "np-admin@example.org"
    assert entry["detail"] == {"version": 2, "status": "published", "confirmed_no_person": True}

    report = await submitted_visit(client, admin)
    done = await client.post(
        f"{report}/publish", json=CONFIRMED, headers=admin | {"If-Match": '"2"'}
    )
    assert done.status_code == 200 and done.json()["status"] == "published", done.text
    [entry] = await publishes(client, admin, done.json()["id"])
    assert entry["actor"] == "np-admin@example.org" and entry["detail"]["confirmed_no_person"]


async def test_a_node_that_does_not_federate_does_not_ask(
    database: Database,
    tmp_path: Path,
    connection: AsyncConnection,
    sessions: async_sessionmaker[AsyncSession],
    admin: Headers,
) -> None:
    async with local_client(database, tmp_path, connection, sessions) as client:
        url = await draft(client, admin)
        published = await client.post(f"{url}/publish", headers=admin | {"If-Match": '"1"'})
        assert published.status_code == 200, published.text
        assert published.json()["hold"] == []
        [entry] = await publishes(client, admin, published.json()["id"])
        assert "confirmed_no_person" not in entry["detail"]


@asynccontextmanager
async def local_client(
    database: Database,
    tmp_path: Path,
    connection: AsyncConnection,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a node without INTEGRA_COUNTRY, on the test's transaction."""
    app = create_app(
        Settings(database_url=database.url, data_dir=tmp_path), engine=connection.engine
    )
    app.state.session_factory = sessions
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://node.test") as client:
        yield client


async def test_a_study_visit_import_publishes_only_with_the_confirmation(
    session: AsyncSession, settings: Settings
) -> None:
    rows = visit_transfer.read_study_visit_rows(
        json.dumps({"study_visits": [visit() | {"ref": "sv-1", "status": "published"}]}).encode()
    )
    by = system_principal("cli:test")
    refused = await visit_transfer.import_study_visits(session, rows, by=by, settings=settings)
    [error] = refused.errors
    assert (refused.created, error.row) == (0, 1)
    assert "--confirm-no-person" in error.reason and "names no person" in error.reason
    assert await visit_transfer.export_study_visits(session, with_participants=False) == []

    done = await visit_transfer.import_study_visits(
        session, rows, by=by, settings=settings, confirmed=True
    )
    assert (done.created, done.errors, done.held) == (1, [], [])
    [entry] = await session.scalars(select(AuditEntry).where(AuditEntry.action == "publish"))
    assert entry.actor == "cli:test"
    assert entry.detail == {"version": 1, "import": True, "confirmed_no_person": True}


def test_an_import_publishes_only_with_the_confirmation(database: Database, tmp_path: Path) -> None:
    """`integra practices import` on a node that federates: a row that publishes is refused
    without --confirm-no-person (the others are stored); with it, it is published, and the
    audit log records the confirmation."""
    db = database.fresh_copy()
    rows = [
        practice(ref="pt-1", title="Published mentoring", country="PT", status="published"),
        practice(ref="pt-2", title="Draft mentoring", country="PT"),
    ]
    file = tmp_path / "practices.json"
    file.write_text(json.dumps({"practices": rows}))
    env = {"INTEGRA_COUNTRY": "PT"}

    first = run_cli("practices", "import", str(file), database_url=db, data_dir=tmp_path, env=env)
    assert first.returncode == 2, first.stdout + first.stderr
    assert "1 created, 0 updated, 0 unchanged, 1 refused" in first.stdout
    assert "row 1 (practice 'pt-1'): " in first.stderr
    assert "--confirm-no-person" in " ".join(first.stderr.split())
    assert stored(db, select(Practice.ref, Practice.status)) == [("pt-2", "draft")]

    args = ("practices", "import", str(file), "--confirm-no-person")
    second = run_cli(*args, database_url=db, data_dir=tmp_path, env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "1 created, 0 updated, 1 unchanged, 0 refused" in second.stdout
    assert stored(db, select(Practice.ref, Practice.status).order_by(Practice.ref)) == [
        ("pt-1", "published"),
        ("pt-2", "draft"),
    ]
    query = select(AuditEntry.actor, AuditEntry.detail).where(AuditEntry.action == "publish")
    [(actor, detail)] = stored(db, query)
    assert actor.startswith("cli:")
    assert detail == {"version": 2, "import": True, "confirmed_no_person": True}


def stored(db: str, query: Select[Any]) -> list[tuple[Any, ...]]:
    engine = create_engine(sync_url(db))
    try:
        with Session(engine) as session:
            return [tuple(row) for row in session.execute(query)]
    finally:
        engine.dispose()
