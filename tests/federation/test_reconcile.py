"""The feed follows the published state, always: what a feed job could not do (no signing key
yet, the key file gone) the reconciliation does later, once, and `feed status` says meanwhile
which records are not in the feed and why."""

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation import feed, keys, reconcile
from federation.models import FeedEntry, NodeKey
from node.core import outbox
from node.core.settings import Settings
from tests import factories
from tests.conftest import Database, run_cli
from tests.federation.forgery import held_records
from tests.federation.test_sync import start

pytestmark = pytest.mark.anyio


async def make_key(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> Path:
    key = keys.generate()
    path = feed.key_path(settings, key.key_id)
    keys.save(key, path)
    async with sessions() as session:
        session.add(NodeKey(key_id=key.key_id, public_key=key.public_b64))
        await session.commit()
    return path


async def feed_status(client: httpx.AsyncClient, admin: factories.Headers) -> dict[str, Any]:
    response = await client.get("/api/v1/federation/feed/status", headers=admin)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def feed_size(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(FeedEntry)) or 0)


async def test_what_was_published_before_the_key_reaches_the_feed_once(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    settings: Settings,
) -> None:
    admin = await factories.make_user(sessions, "admin")
    first = await factories.publish_practice(client, admin, country="PT")
    second = await factories.publish_practice(client, admin, country="PT")

    status = await feed_status(client, admin)
    assert status["problem"] == "no signing key: run `integra keys init`"
    assert status["summary"] == {"held": 0, "failed": 0, "waiting": 2}
    assert {r["id"] for r in status["records"]} == {first["id"], second["id"]}
    for record in status["records"]:
        assert record["reason"] == "waiting" and record["change"] == "append"
        assert "no signing key" in record["detail"] and record["job"] is not None
    assert not status["in_step"]

    key_file = await make_key(settings, sessions)
    # The periodic sweep (at start, then every interval) reconciles before its own work.
    jobs = client._transport.app.state.jobs  # type: ignore[attr-defined]
    await session.run_sync(outbox.sweep, jobs)
    assert await feed_size(session) == 2
    status = await feed_status(client, admin)
    assert status["in_step"] and status["records"] == [] and status["problem"] is None

    again = await session.run_sync(lambda s: reconcile.reconcile(s, settings))
    assert (again.appended, again.withdrawn, again.failed) == (0, 0, {})
    assert await feed_size(session) == 2

    # The key file goes missing: an edit and a withdrawal cannot reach the feed...
    hidden = key_file.rename(key_file.with_suffix(".away"))
    edited = await client.patch(
        f"/api/v1/practices/{first['id']}",
        json={"summary": "Mentors accompany released prisoners for two years now."},
        headers=admin | {"If-Match": f'"{first["version"]}"'},
    )
    assert edited.status_code == 200, edited.text
    withdrawn = await client.post(
        f"/api/v1/practices/{second['id']}/withdraw",
        json={"reason": "Programme ended"},
        headers=admin | {"If-Match": f'"{second["version"]}"'},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    status = await feed_status(client, admin)
    changes = {r["id"]: r for r in status["records"]}
    assert changes[first["id"]]["change"] == "append"
    assert changes[first["id"]]["version"] == edited.json()["version"]
    assert changes[first["id"]]["feed_version"] == first["version"]
    assert changes[second["id"]]["change"] == "withdraw"
    assert all("FileNotFoundError" in r["detail"] for r in status["records"])

    # ...until it is back: the new version and a tombstone, once.
    hidden.rename(key_file)
    done = await session.run_sync(lambda s: reconcile.reconcile(s, settings))
    assert (done.appended, done.withdrawn, done.failed) == (1, 1, {})
    last = await session.run_sync(lambda s: feed.last_entry(s, f"PT:{second['id']}"))
    assert last is not None and last.op == "withdraw"
    again = await session.run_sync(lambda s: reconcile.reconcile(s, settings))
    assert (again.appended, again.withdrawn) == (0, 0)
    assert await feed_size(session) == 4
    assert (await feed_status(client, admin))["records"] == []


async def test_a_held_record_is_reported_with_its_detector_and_left_to_review(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    settings: Settings,
    signing_key: keys.SigningKey,
) -> None:
    admin = await factories.make_user(sessions, "admin")
    leaky = await factories.publish_practice(
        client, admin, country="PT", description="Write to joana.marques@example.org first."
    )
    status = await feed_status(client, admin)
    [record] = status["records"]
    assert record["id"] == leaky["id"] and record["reason"] == "held"
    assert record["detail"] == "an e-mail address in description" and record["hold"]
    assert status["summary"] == {"held": 1, "failed": 0, "waiting": 0}

    outcome = await session.run_sync(lambda s: reconcile.reconcile(s, settings))
    assert (outcome.appended, outcome.held, outcome.failed) == (0, 0, {})
    assert await feed_size(session) == 0


async def test_feed_status_is_for_administrators(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    editor = await factories.make_user(sessions, "editor")
    assert (await client.get("/api/v1/federation/feed/status")).status_code == 401
    refused = await client.get("/api/v1/federation/feed/status", headers=editor)
    assert refused.status_code == 403 and refused.json()["error"] == "Forbidden"


# --- as an operator meets it: the CLI, then the hub ---------------------------------------------


def test_practices_published_before_keys_init_reach_the_hub(
    database: Database, tmp_path: Path
) -> None:
    db, data, env = database.fresh_copy(), tmp_path / "pt", {"INTEGRA_COUNTRY": "PT"}

    def cli(*args: str, code: int = 0) -> str:
        result = run_cli(*args, database_url=db, data_dir=data, env=env)
        assert result.returncode == code, result.stdout + result.stderr
        return result.stdout

    rows = [factories.practice(country="PT", status="published", ref=f"pt-{i}") for i in range(3)]
    (tmp_path / "practices.json").write_text(json.dumps({"practices": rows}))
    imported = cli("practices", "import", str(tmp_path / "practices.json"), "--confirm-no-person")
    assert "3 created" in imported

    said = cli("feed", "status")
    assert "no signing key: run `integra keys init`" in said
    assert "feed not in step: 3 of 3 published records (3 waiting)" in said
    status = json.loads(cli("feed", "status", "--json"))
    assert [r["reason"] for r in status["records"]] == ["waiting"] * 3
    assert all("no signing key" in r["detail"] for r in status["records"])
    published = {r["feed_id"] for r in status["records"]}
    refused = run_cli("feed", "reconcile", database_url=db, data_dir=data, env=env)
    assert refused.returncode == 1 and "no signing key" in refused.stderr

    shown = cli("keys", "init")
    assert "feed reconciled: 3 appended, 0 withdrawn" in shown
    public = re.search(r"public key\s+(\S+)", shown).group(1)  # type: ignore[union-attr]
    status = json.loads(cli("feed", "status", "--json"))
    assert status["in_step"] and status["records"] == [] and status["failed_jobs"] == []
    assert status["waiting_jobs"] == 0  # the jobs that waited for the key are done

    node, url = start("node", tmp_path, env | {"DATABASE_URL": db, "INTEGRA_DATA_DIR": str(data)})
    try:
        hub_db, hub_data = database.fresh_copy(), tmp_path / "hub"
        hub = ("--country", "PT", "--url", url, "--key", public)
        enrolled = run_cli("hub", "enrol", *hub, database_url=hub_db, data_dir=hub_data)
        assert enrolled.returncode == 0, enrolled.stderr
        synced = run_cli("hub", "sync", database_url=hub_db, data_dir=hub_data)
        assert "PT: 3 applied, 0 unchanged, 0 refused" in synced.stdout, synced.stderr
    finally:
        node.terminate()
        node.wait(timeout=30)
    assert set(held_records(hub_db)) == published
