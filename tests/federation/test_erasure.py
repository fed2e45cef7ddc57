"""Erasable bodies in a verifiable log (feed v2): a leak withdrawn for personal data is purged
from the node, the hub, a mirror that had it and a mirror that starts afterwards, down to the
bytes of their databases, while every feed still verifies against its signed checkpoints."""

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from federation import feed, keys
from federation.canonical import canonical
from federation.merkle import dump_frontier, extend, leaf_hash, root
from federation.models import FeedEntry
from federation.redaction import redact_record
from node.core.settings import Settings, sync_url
from tests import factories
from tests.conftest import Database, run_cli
from tests.federation.conftest import administrator, enrol, new_signing_key
from tests.federation.forgery import BODY, NOW, Peer, due_now, enrolled_hub, held_records, rows
from tests.federation.test_migrations import migrate
from tests.federation.test_sync import cli, start, wait_for
from tests.leaks import raw_traces

LEAK = "Quorvex Blandry"  # a person no gate can know
# The running hub pulls its node by itself, every second.
HUB = {"INTEGRA_COUNTRY": "EU", "INTEGRA_ROLE": "hub", "INTEGRA_HUB_SYNC_INTERVAL": "PT1S"}
MIRROR = {"INTEGRA_COUNTRY": "FR"}


def traces(db: str) -> list[str]:
    """Where a word of the leak is in a database, case-insensitively, as stored."""
    return raw_traces(db, LEAK.split())


def whole_feed(url: str) -> tuple[str, list[dict[str, Any]]]:
    """Every page of a feed, as the raw text served and as entries."""
    raw, entries, after = "", [], 0
    while True:
        response = httpx.get(f"{url}/federation/v1/feed", params={"after": after, "limit": 500})
        assert response.status_code == 200, response.text
        raw += response.text
        page = response.json()
        entries += page["entries"]
        if page["next_after"] is None:
            return raw, entries
        after = page["next_after"]


def leaves(entries: list[dict[str, Any]]) -> list[bytes]:
    """The Merkle leaves of a feed's entries: a purged v1 entry gives its own."""
    return [
        bytes.fromhex(e["leaf"]) if "leaf" in e else leaf_hash(canonical(e["payload"]))
        for e in entries
    ]


def checkpoint_holds(url: str, entries: list[dict[str, Any]]) -> bool:
    signed = httpx.get(f"{url}/federation/v1/checkpoint").json()["checkpoint"]
    return bool(signed["size"] == len(entries) and signed["root"] == root(leaves(entries)).hex())


def node_process(
    database: Database, tmp_path: Path, db: str | None = None, *, admin: bool = True
) -> tuple[Any, dict[str, Any]]:
    """A Portuguese node (no sample data) with a signing key (a new one, unless `db` is given
    with its own) and an administrator's token (unless not `admin`), made in this process as
    `integra keys init`, `user add` and `token create` make them (a process each would cost
    seconds; tests/federation/test_sync.py runs the commands)."""
    public = None
    data = tmp_path / "pt"
    if db is None:
        db = database.fresh_copy()
        public = new_signing_key(db, data, "PT")
    headers = administrator(db) if admin else {}
    env = {"DATABASE_URL": db, "INTEGRA_DATA_DIR": str(data), "INTEGRA_COUNTRY": "PT"}
    process, url = start("node", tmp_path, env)
    return process, {
        "url": url,
        "db": db,
        "data": data,
        "public_key": public,
        "admin": headers,
    }


def hub_process(
    database: Database, tmp_path: Path, node: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """The EU hub with its signing key, enrolling the node (as `integra keys init` and `hub
    enrol` would), served."""
    db, data = database.fresh_copy(), tmp_path / "hub"
    key = new_signing_key(db, data, "EU", "hub")
    enrol(db, "PT", node["url"], node["public_key"], "node")
    process, url = start("hub", tmp_path, HUB | {"DATABASE_URL": db, "INTEGRA_DATA_DIR": str(data)})
    return process, {"url": url, "db": db, "data": data, "key": key}


def sync(place: dict[str, Any], env: dict[str, str], command: str = "hub") -> str:
    due_now(place["db"])
    return cli(place["db"], place["data"], command, "sync", env=env)


def refusals(place: dict[str, Any]) -> list[Any]:
    return rows(place["db"], "SELECT seq, record_id, reason FROM sync_refusal")


def new_mirror(
    database: Database, tmp_path: Path, name: str, hub: dict[str, Any]
) -> dict[str, Any]:
    """A French node mirroring the hub (as `integra mirror add` would)."""
    mirror: dict[str, Any] = {"db": database.fresh_copy(), "data": tmp_path / name}
    enrol(mirror["db"], "EU", hub["url"], hub["key"], "hub")
    return mirror


def test_a_leak_withdrawn_for_personal_data_is_nowhere_at_the_node_hub_and_mirrors(
    database: Database, tmp_path: Path
) -> None:
    processes = []
    try:
        node_proc, node = node_process(database, tmp_path)
        processes.append(node_proc)
        hub_proc, hub = hub_process(database, tmp_path, node)
        processes.append(hub_proc)
        admin = node["admin"]

        practice = factories.practice(
            country="PT",
            description=f"Weekly group sessions follow the {LEAK} method of desistance.",
        )
        created = httpx.post(f"{node['url']}/api/v1/practices", json=practice, headers=admin)
        assert created.status_code == 201, created.text
        local_id = created.json()["id"]
        rid = f"PT:{local_id}"
        published = httpx.post(
            f"{node['url']}/api/v1/practices/{local_id}/publish",
            json=factories.CONFIRMED,
            headers=admin | {"If-Match": created.headers["etag"]},
        )
        assert published.status_code == 200 and not published.json()["hold"], published.text
        wait_for("the leak in the node's feed", lambda: LEAK in whole_feed(node["url"])[0])

        wait_for("the leak at the hub", lambda: LEAK in whole_feed(hub["url"])[0])
        mirror = new_mirror(database, tmp_path, "fr", hub)
        assert "EU: 1 applied" in sync(mirror, MIRROR, "mirror")
        # The leak travelled, and the search below finds it where it is.
        assert LEAK in whole_feed(hub["url"])[0]
        assert traces(hub["db"]) and traces(mirror["db"]) and traces(node["db"])

        withdrawn = httpx.post(
            f"{node['url']}/api/v1/practices/{local_id}/withdraw",
            json={"reason": "It names a person.", "reason_code": "personal_data"},
            headers=admin | {"If-Match": published.headers["etag"]},
        )
        assert withdrawn.status_code == 200, withdrawn.text
        assert withdrawn.json()["status"] == "withdrawn"
        assert withdrawn.json()["description"] is None

        def redacted_at_node() -> list[dict[str, Any]]:
            return [e for e in whole_feed(node["url"])[1] if e["payload"]["op"] == "redact"]

        [redaction] = wait_for("the node's signed redaction", redacted_at_node)
        assert redaction["payload"]["id"] == rid
        assert redaction["payload"]["redact"]["reason"] == "personal_data"
        assert redaction["payload"]["redact"]["versions"] == [published.json()["version"]]

        def redacted_at_hub() -> bool:
            return any(e["payload"]["op"] == "redact" for e in whole_feed(hub["url"])[1])

        wait_for("the redaction at the hub", redacted_at_hub)
        synced = sync(mirror, MIRROR, "mirror")
        assert "EU: 1 applied, 0 unchanged, 0 refused" in synced, refusals(mirror)
        late = new_mirror(database, tmp_path, "fr2", hub)
        # The purged upsert is passed (its leaf counts), the tombstone applied.
        synced = sync(late, MIRROR, "mirror")
        assert "EU: 1 applied, 0 unchanged, 0 refused" in synced, refusals(late)

        node_raw, node_entries = whole_feed(node["url"])
        hub_raw, hub_entries = whole_feed(hub["url"])
        for place, raw in (("node", node_raw), ("hub", hub_raw)):
            assert LEAK.split()[0].lower() not in raw.lower(), f"the {place}'s feed"
            assert LEAK.split()[1].lower() not in raw.lower(), f"the {place}'s feed"
        for name, db in (("node", node["db"]), ("hub", hub["db"])):
            assert not traces(db), f"the {name}'s database: {traces(db)}"
        for name, db in (("mirror", mirror["db"]), ("new mirror", late["db"])):
            assert not traces(db), f"the {name}'s database: {traces(db)}"

        # The log still verifies: every entry's place in the tree, under the signed roots.
        assert checkpoint_holds(node["url"], node_entries)
        assert checkpoint_holds(hub["url"], hub_entries)
        [purged] = [e for e in hub_entries if e.get("redacted")]
        assert purged["body"] is None and purged["payload"]["id"] == rid
        assert [e["payload"]["op"] for e in hub_entries if e["payload"]["id"] == rid] == [
            "upsert",
            "withdraw",
            "redact",
        ]
        # `integra verify` traces the purged copy to PT through the hub: the signatures hold.
        copy = tmp_path / "purged.json"
        copy.write_text(json.dumps(purged))
        checked = run_cli(
            "verify",
            str(copy),
            "--keys",
            f"{hub['url']}/federation/v1/keys",
            "--keys",
            f"{node['url']}/federation/v1/keys",
            database_url=hub["db"],
            data_dir=hub["data"],
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "signed by EU" in checked.stdout and "signed by PT" in checked.stdout
        assert "purged" in checked.stdout
        for holder in (hub, mirror, late):
            [(withdrawn_flag, _)] = [v for k, v in held_records(holder["db"]).items() if k == rid]
            assert withdrawn_flag
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def v1_entry(key: keys.SigningKey, seq: int, rid: str, version: int, body: Any) -> dict[str, Any]:
    """An entry as a node signed it before feed v2: the body inside the signed payload."""
    payload = {
        "origin": "PT",
        "seq": seq,
        "type": "practice",
        "id": rid,
        "version": version,
        "op": "upsert",
        "body": body,
        "time": NOW,
    }
    signed = canonical(payload)
    return {
        "seq": seq,
        "record_type": "practice",
        "record_id": rid,
        "version": version,
        "op": "upsert",
        "payload": signed.decode(),
        "body_hash": feed.body_digest(body),
        "key_id": key.key_id,
        "signature": key.sign(signed),
        "created_at": "2026-11-30 00:00:00",
    }


def test_v1_entries_from_before_the_migration_still_verify_and_can_be_purged(
    database: Database, tmp_path: Path
) -> None:
    """A feed written before feed v2 (0012) keeps its entries; a redaction purges a v1 entry
    to its Merkle leaf; the hub accepts the feed (v1, purged, v2) against its checkpoint."""
    db = database.fresh_copy()
    migrate(db, "0012", down=True)
    key = keys.generate()
    settings = Settings(database_url=db, data_dir=tmp_path / "pt", country="PT")
    keys.save(key, feed.key_path(settings, key.key_id))
    leaked, kept = str(uuid.uuid4()), str(uuid.uuid4())
    old = [
        v1_entry(key, 1, f"PT:{leaked}", 1, BODY | {"summary": f"Run by {LEAK}."}),
        v1_entry(key, 2, f"PT:{kept}", 1, BODY),
    ]
    engine = create_engine(sync_url(db))
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO node_key (key_id, public_key, created_at) VALUES (:k, :p, :t)"),
            {"k": key.key_id, "p": key.public_b64, "t": "2026-11-30 00:00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO feed_entry (seq, record_type, record_id, version, op, payload,"
                " body_hash, key_id, signature, created_at) VALUES (:seq, :record_type,"
                " :record_id, :version, :op, :payload, :body_hash, :key_id, :signature,"
                " :created_at)"
            ),
            old,
        )
        frontier = extend([], [leaf_hash(e["payload"].encode()) for e in old])
        conn.execute(
            text("UPDATE feed_state SET size = 2, frontier = :f WHERE id = 1"),
            {"f": json.dumps(dump_frontier(frontier))},
        )
    engine.dispose()
    before = root([leaf_hash(e["payload"].encode()) for e in old])
    migrate(db, "head")

    engine = create_engine(sync_url(db))
    with Session(engine) as session:
        redaction = redact_record(session, settings, "practice", leaked, "personal_data")
        assert redaction is not None
        session.commit()
        purged = session.get(FeedEntry, 1)
        assert purged is not None and purged.payload == "" and purged.redacted
        assert purged.leaf == leaf_hash(old[0]["payload"].encode()).hex()
        kept_entry = session.get(FeedEntry, 2)
        assert kept_entry is not None and kept_entry.payload == old[1]["payload"]
    engine.dispose()
    assert not traces(db)

    processes = []
    try:
        node_proc, node = node_process(database, tmp_path, db, admin=False)
        processes.append(node_proc)

        def settled() -> list[dict[str, Any]] | None:
            """The feed once the node's reconciliation withdrew the record it does not have."""
            entries = whole_feed(node["url"])[1]
            return entries if len(entries) == 5 else None

        entries = wait_for("the node's reconciliation", settled)
        raw = whole_feed(node["url"])[0]
        assert LEAK.split()[0].lower() not in raw.lower()
        assert entries[0] == {
            "seq": 1,
            "leaf": leaf_hash(old[0]["payload"].encode()).hex(),
            "redacted": {"by_seq": 4, "reason": "personal_data"},
        }
        assert entries[1]["payload"] == json.loads(old[1]["payload"])  # v1, as signed
        assert keys.verify(key.public_b64, canonical(entries[1]["payload"]), entries[1]["sig"])
        ops = [(e["payload"]["id"], e["payload"]["op"]) for e in entries[2:]]
        assert ops == [
            (f"PT:{leaked}", "withdraw"),
            (f"PT:{leaked}", "redact"),
            (f"PT:{kept}", "withdraw"),
        ]
        assert root(leaves(entries[:2])) == before  # the old checkpoint is still checkable
        assert checkpoint_holds(node["url"], entries)

        hub_db, hub_data = database.fresh_copy(), tmp_path / "hub"
        cli(
            hub_db,
            hub_data,
            "hub",
            "enrol",
            "--country",
            "PT",
            "--url",
            node["url"],
            "--key",
            key.public_b64,
        )
        synced = cli(hub_db, hub_data, "hub", "sync")
        # The purged entry is passed (its leaf counts); the v1 entry and the tombstones apply.
        assert "PT: 3 applied, 0 unchanged, 0 refused" in synced
        held = held_records(hub_db)
        assert set(held) == {f"PT:{leaked}", f"PT:{kept}"} and held[f"PT:{leaked}"][0]
        assert not traces(hub_db)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def test_a_forged_redaction_is_refused_with_its_reason_and_changes_nothing(
    database: Database, tmp_path: Path, serve: Any
) -> None:
    """A redaction signed by a key the hub does not trust, or for another origin's record,
    is refused with its reason; the record keeps its body at the hub."""
    pt = Peer(tmp_path / "pt", "PT")
    body = BODY | {"summary": "Mentors meet weekly."}
    pt.add_v2(pt.payload_v2("a", 1, body), body)
    stranger = keys.generate()
    statement = {"reason": "personal_data", "seqs": [1], "versions": [1]}
    pt.add_v2(pt.payload_v2("a", 1, None, "redact", redact=statement), None, key=stranger)
    pt.add_v2(pt.payload_v2("ES:b", 1, None, "redact", redact=statement), None)
    bad = statement | {"reason": "because"}
    pt.add_v2(pt.payload_v2("a", 1, None, "redact", redact=bad), None)
    later = statement | {"versions": [2]}
    pt.add_v2(pt.payload_v2("a", 1, None, "redact", redact=later), None)
    pt.checkpoint()
    url = serve(pt)
    hub_db, hub_data = enrolled_hub(database, tmp_path, "hub", {url: pt})

    hub = {"INTEGRA_ROLE": "hub", "INTEGRA_COUNTRY": "EU"}
    synced = run_cli("hub", "sync", database_url=hub_db, data_dir=hub_data, env=hub)
    assert "PT: 1 applied, 0 unchanged, 4 refused" in synced.stdout, synced.stdout + synced.stderr
    reasons = [r for _, r in rows(hub_db, "SELECT seq, reason FROM sync_refusal ORDER BY seq")]
    assert "signed by a key not enrolled here" in reasons[0]
    assert "outside the PT namespace" in reasons[1]
    assert "unknown redaction reason" in reasons[2]
    assert "earlier versions of its record" in reasons[3]
    [(stored, redacted)] = rows(
        hub_db, "SELECT body, redacted FROM feed_entry WHERE record_id = 'PT:a'"
    )
    assert json.loads(stored) == body and redacted is None
    assert rows(hub_db, "SELECT count(*) FROM feed_entry")[0][0] == 1  # nothing else relayed
    [(record_redacted,)] = rows(hub_db, "SELECT redacted FROM federated_record")
    assert record_redacted is None and held_records(hub_db)["PT:a"][0] is False


@pytest.mark.anyio
async def test_a_correction_redacts_the_bodies_of_the_earlier_versions(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    signing_key: keys.SigningKey,
) -> None:
    """Publishing a new version with `redact_previous` purges the earlier versions' bodies in
    the node's feed (a signed redaction, reason `correction`); the new version travels."""
    admin = await factories.make_user(sessions, "admin")
    made = await factories.publish_practice(
        client, admin, description=f"Designed by {LEAK} in 2021."
    )
    corrected = await client.patch(
        f"/api/v1/practices/{made['id']}",
        params={"redact_previous": "true"},
        json={"description": "Designed by the probation service in 2021."},
        headers=admin | {"If-Match": f'"{made["version"]}"'},
    )
    assert corrected.status_code == 200, corrected.text
    page = (await client.get("/federation/v1/feed")).json()["entries"]
    assert [e["payload"]["op"] for e in page] == ["upsert", "upsert", "redact"]
    first, second, redaction = page
    assert first["body"] is None and first["redacted"]["reason"] == "correction"
    assert LEAK not in json.dumps(page)
    assert second["body"]["description"] == "Designed by the probation service in 2021."
    assert redaction["payload"]["redact"] == {
        "reason": "correction",
        "seqs": [1],
        "versions": [made["version"]],
    }
    assert keys.verify(signing_key.public_b64, canonical(first["payload"]), first["sig"])

    draft = await client.post("/api/v1/practices", json=factories.practice(), headers=admin)
    refused = await client.patch(
        f"/api/v1/practices/{draft.json()['id']}",
        params={"redact_previous": "true"},
        json={"summary": "Changed."},
        headers=admin | {"If-Match": draft.headers["etag"]},
    )
    assert refused.status_code == 422
    assert refused.json()["fields"][0]["field"] == "redact_previous"
