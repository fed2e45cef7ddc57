"""Signed sync between a real node process and the hub, over HTTP on 127.0.0.1."""

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from federation import keys
from federation.canonical import canonical
from node.core.settings import sync_url
from tests import factories
from tests.conftest import KEPT_SETTINGS, Database, free_port, run_cli
from tests.federation.conftest import administrator, enrol, new_signing_key
from tests.federation.forgery import held_records


def cli(
    db: str, data: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> str:
    result = run_cli(*args, database_url=db, data_dir=data, stdin=stdin, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def node(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A Portuguese node with the sample data, a signing key and an admin token (one per
    database backend: starting it is the slow part; each test gets its own hub). The key and
    the account are made in this process, as `integra keys init`, `user add` and `token create`
    make them: the journey at the end runs `keys init`, tests/node/test_cli.py the others."""
    tmp_path = tmp_path_factory.mktemp("node")
    db, data = database.fresh_copy(), tmp_path / "pt"
    public = new_signing_key(db, data, "PT")
    admin = administrator(db, email="np@example.pt")
    process, url = start(
        "node",
        tmp_path,
        {"DATABASE_URL": db, "INTEGRA_DATA_DIR": str(data), "INTEGRA_COUNTRY": "PT"},
        "--sample-data",
    )
    try:
        yield {
            "url": url,
            "public_key": public,
            "db": db,
            "admin": admin,
        }
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def hub(database: Database, tmp_path: Path, node: dict[str, Any]) -> dict[str, Any]:
    """A hub enrolling the node (as `integra hub enrol` does: the journey at the end runs it)."""
    db, data = database.fresh_copy(), tmp_path / "hub"
    enrol(db, "PT", node["url"], node["public_key"], "node")
    return {"db": db, "data": data}


def hub_rows(db: str, sql: str) -> list[Any]:
    engine = create_engine(sync_url(db))
    with engine.connect() as conn:
        rows = list(conn.execute(text(sql)))
    engine.dispose()
    return rows


def test_a_node_syncs_signed_non_personal_records_to_the_hub(
    node: dict[str, Any], hub: dict[str, Any]
) -> None:
    feed = httpx.get(f"{node['url']}/federation/v1/feed", params={"limit": 1000}).json()
    upserts = [e for e in feed["entries"] if e["payload"]["op"] == "upsert"]
    assert len(upserts) >= 10  # the sample's Portuguese practices and study-visit reports
    # The reports are `network`: withheld from a hub the node does not trust (this one).
    upserts = [e for e in upserts if not e.get("withheld")]

    first = cli(hub["db"], hub["data"], "hub", "sync")
    assert f"PT: {len(upserts)} applied, 0 unchanged, 0 refused" in first

    records = held_records(hub["db"])
    assert len(records) == len(upserts)
    for record_id, (withdrawn, envelope) in records.items():
        signed = json.loads(envelope)
        assert record_id.startswith("PT:") and not withdrawn
        assert keys.verify(node["public_key"], canonical(signed["payload"]), signed["sig"])

    again = cli(hub["db"], hub["data"], "hub", "sync")
    assert "nothing is due" in again or "PT: 0 applied, 0 unchanged, 0 refused" in again


def test_nothing_personal_reaches_the_hub(node: dict[str, Any], hub: dict[str, Any]) -> None:
    cli(hub["db"], hub["data"], "hub", "sync")
    import json

    registry = json.loads(
        (Path(__file__).parents[2] / "registry/sample_data/registry.json").read_text()
    )
    visits = json.loads(
        (Path(__file__).parents[2] / "practices/sample_data/study_visits.json").read_text()
    )
    secrets = [
        c[k]
        for o in registry["organisations"]
        for c in o.get("contact_points", [])
        for k in ("email",)
        if c.get(k)
    ]
    secrets += [
        n.replace(" (sample)", "") for v in visits["study_visits"] for n in v["participant_names"]
    ]
    secrets += ["np@example.pt"]
    dump = "\n".join(
        str(row)
        for table in ("federated_record", "sync_refusal", "audit_entry", "peer", "peer_key")
        for row in hub_rows(hub["db"], f"SELECT * FROM {table}")
    )
    assert "PT:" in dump
    for secret in secrets:
        assert secret not in dump, secret


def test_a_withdrawal_reaches_the_hub_as_a_signed_tombstone(
    node: dict[str, Any], hub: dict[str, Any]
) -> None:
    cli(hub["db"], hub["data"], "hub", "sync")
    listing = httpx.get(
        f"{node['url']}/api/v1/practices",
        params={"country": "PT", "limit": 1},
        headers=node["admin"],
    ).json()["items"][0]
    withdrawn = httpx.post(
        f"{node['url']}/api/v1/practices/{listing['id']}/withdraw",
        json={"reason": "Programme ended"},
        headers=node["admin"] | {"If-Match": f'"{listing["version"]}"'},
    )
    assert withdrawn.status_code == 200
    engine = create_engine(sync_url(hub["db"]))  # the next round is due at once
    with engine.begin() as conn:
        conn.execute(text("UPDATE peer_sync SET next_attempt_at = NULL"))
    engine.dispose()
    result = cli(hub["db"], hub["data"], "hub", "sync")
    assert "PT: 1 applied" in result
    withdrawn_flag, envelope = held_records(hub["db"])[f"PT:{listing['id']}"]
    tombstone = json.loads(envelope)["payload"]
    assert withdrawn_flag and tombstone["op"] == "withdraw" and tombstone["body_hash"] is None


def test_integra_verify_traces_a_hub_copy_to_its_signer(
    node: dict[str, Any], hub: dict[str, Any], tmp_path: Path
) -> None:
    cli(hub["db"], hub["data"], "hub", "sync")
    record_id, (_, envelope) = min(held_records(hub["db"]).items())
    copy = tmp_path / "record.json"
    copy.write_text(envelope)
    keys_url = f"{node['url']}/federation/v1/keys"
    checked = run_cli(
        "verify", str(copy), "--keys", keys_url, database_url=hub["db"], data_dir=hub["data"]
    )
    assert checked.returncode == 0, checked.stderr
    assert record_id in checked.stdout and "signed by PT" in checked.stdout
    assert "valid" in checked.stdout

    import json

    forged = json.loads(envelope)
    forged["payload"]["version"] += 1
    copy.write_text(json.dumps(forged))
    refused = run_cli(
        "verify", str(copy), "--keys", keys_url, database_url=hub["db"], data_dir=hub["data"]
    )
    assert refused.returncode == 1 and "INVALID: signature does not match" in refused.stdout


def test_a_running_hub_pulls_by_itself_and_searches_the_eu_pool(
    node: dict[str, Any], hub: dict[str, Any], tmp_path: Path
) -> None:
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("INTEGRA_") or k in KEPT_SETTINGS
    }
    env |= {
        "DATABASE_URL": hub["db"],
        "INTEGRA_DATA_DIR": str(hub["data"]),
        "INTEGRA_ROLE": "hub",
        "INTEGRA_HUB_SYNC_INTERVAL": "PT5S",
    }
    with (tmp_path / "hub.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "node", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline, page = time.monotonic() + 90, {"total": 0}
        while time.monotonic() < deadline and not page["total"]:
            time.sleep(0.5)
            try:
                page = httpx.get(f"{url}/api/v1/hub/search", params={"q": "reinsercao"}).json()
            except (httpx.TransportError, ValueError):
                page = {"total": 0}
        assert page["total"] >= 1, (tmp_path / "hub.log").read_text()[-2000:]
        hit = page["items"][0]
        assert hit["origin"] == "PT" and hit["record_id"].startswith("PT:")
        everything = httpx.get(f"{url}/api/v1/hub/search", params={"limit": 1}).json()
        assert {f["value"] for f in everything["facets"]["country"]} >= {"PT"}
        record = httpx.get(f"{url}/api/v1/hub/records/{hit['record_id']}").json()
        assert keys.verify(
            node["public_key"], canonical(record["envelope"]["payload"]), record["envelope"]["sig"]
        )
    finally:
        process.terminate()
        process.wait(timeout=30)


def start(name: str, tmp_path: Path, env: dict[str, str], *args: str) -> tuple[Any, str]:
    """`python -m node serve` as a real process on a free port, once it answers /readyz."""
    port = free_port()
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith("INTEGRA_") or k in KEPT_SETTINGS
    }
    clean.pop("DATABASE_URL", None)
    with (tmp_path / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "node", "serve", "--port", str(port), *args],
            env=clean | env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise AssertionError((tmp_path / f"{name}.log").read_text()[-3000:])


def wait_for(what: str, check: Any, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_record_travels_node_hub_mirror_and_its_withdrawal_follows(
    node: dict[str, Any], database: Database, tmp_path: Path
) -> None:
    """PT publishes; the hub finds it after a round, signed by PT; the hub relays it, signed
    again, to a French node that mirrors the EU pool; an edit arrives as the new version; a
    withdrawal leaves the hub's search and the mirror's."""
    hub_db, hub_data = database.fresh_copy(), tmp_path / "hub"
    hub_env = {"INTEGRA_COUNTRY": "EU", "INTEGRA_ROLE": "hub"}
    shown = cli(hub_db, hub_data, "keys", "init", env=hub_env)
    hub_key = re.search(r"public key\s+(\S+)", shown).group(1)  # type: ignore[union-attr]
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
        node["public_key"],
    )
    mirror_db, mirror_data = database.fresh_copy(), tmp_path / "fr"
    fast = {"INTEGRA_HUB_SYNC_INTERVAL": "PT1S"}
    processes = []
    try:
        hub, hub_url = start(
            "hub",
            tmp_path,
            hub_env | fast | {"DATABASE_URL": hub_db, "INTEGRA_DATA_DIR": str(hub_data)},
        )
        processes.append(hub)
        cli(mirror_db, mirror_data, "mirror", "add", "--url", hub_url, "--key", hub_key)
        # A node that federates (INTEGRA_COUNTRY) is ready only with its signing key.
        cli(mirror_db, mirror_data, "keys", "init", env={"INTEGRA_COUNTRY": "FR"})
        mirror, mirror_url = start(
            "fr",
            tmp_path,
            fast
            | {
                "INTEGRA_COUNTRY": "FR",
                "DATABASE_URL": mirror_db,
                "INTEGRA_DATA_DIR": str(mirror_data),
            },
        )
        processes.append(mirror)

        title = f"Atelier de désistement {uuid.uuid4().hex[:6]}"
        created = httpx.post(
            f"{node['url']}/api/v1/practices",
            json=factories.practice(title=title, country="PT", language="fr"),
            headers=node["admin"],
        )
        assert created.status_code == 201, created.text
        published = httpx.post(
            f"{node['url']}/api/v1/practices/{created.json()['id']}/publish",
            json=factories.CONFIRMED,
            headers=node["admin"] | {"If-Match": created.headers["etag"]},
        )
        assert published.status_code == 200, published.text
        rid = f"PT:{created.json()['id']}"
        words = title.split()[-1]

        def hits(url: str) -> list[dict[str, Any]]:
            page = httpx.get(f"{url}/api/v1/eu/search", params={"q": words}).json()
            return [h for h in page["items"] if h["record_id"] == rid]

        [at_hub] = wait_for("the hub to find the practice", lambda: hits(hub_url))
        assert at_hub["origin"] == "PT" and at_hub["title"] == title
        record = httpx.get(f"{hub_url}/api/v1/eu/records/{rid}").json()
        assert record["version"] == published.json()["version"]
        assert keys.verify(
            node["public_key"], canonical(record["envelope"]["payload"]), record["envelope"]["sig"]
        )
        [at_mirror] = wait_for("the mirror to find the practice", lambda: hits(mirror_url))
        assert at_mirror["origin"] == "PT"

        # The hub's own feed relays PT's envelope unchanged, signed again: verify both links.
        relayed = [
            e
            for e in httpx.get(f"{hub_url}/federation/v1/feed", params={"limit": 1000}).json()[
                "entries"
            ]
            if e["payload"]["id"] == rid
        ]
        assert relayed[-1]["payload"]["envelope"] == record["envelope"]
        # The hub keeps PT's envelope once: in that entry of its feed, byte for byte (the API
        # above read it there). The mirror, which relays nothing, keeps it in its record.
        [(own, relay_seq)] = hub_rows(
            hub_db, f"SELECT envelope, relay_seq FROM federated_record WHERE record_id = '{rid}'"
        )
        [(payload,)] = hub_rows(hub_db, f"SELECT payload FROM feed_entry WHERE seq = {relay_seq}")
        assert own is None and relay_seq == relayed[-1]["payload"]["seq"]
        assert canonical(record["envelope"]).decode() in payload
        [(mirrored, none)] = hub_rows(
            mirror_db, f"SELECT envelope, relay_seq FROM federated_record WHERE record_id = '{rid}'"
        )
        assert json.loads(mirrored) == record["envelope"] and none is None
        copy = tmp_path / "relayed.json"
        copy.write_text(json.dumps(relayed[-1]))
        checked = run_cli(
            "verify",
            str(copy),
            "--keys",
            f"{hub_url}/federation/v1/keys",
            "--keys",
            f"{node['url']}/federation/v1/keys",
            database_url=mirror_db,
            data_dir=mirror_data,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "signed by EU" in checked.stdout and "signed by PT" in checked.stdout

        edited = httpx.patch(
            f"{node['url']}/api/v1/practices/{created.json()['id']}",
            json={"summary": "Des ateliers de groupe pour sortir de la violence, revus."},
            headers=node["admin"] | {"If-Match": published.headers["etag"]},
        )
        assert edited.status_code == 200, edited.text
        for url in (hub_url, mirror_url):
            wait_for(
                f"the edit at {url}",
                lambda url=url: (
                    httpx.get(f"{url}/api/v1/eu/records/{rid}").json()["version"]
                    == edited.json()["version"]
                ),
            )
        assert (
            "revus" in httpx.get(f"{mirror_url}/api/v1/eu/records/{rid}").json()["body"]["summary"]
        )

        withdrawn = httpx.post(
            f"{node['url']}/api/v1/practices/{created.json()['id']}/withdraw",
            json={"reason": "Programme ended"},
            headers=node["admin"] | {"If-Match": edited.headers["etag"]},
        )
        assert withdrawn.status_code == 200, withdrawn.text
        for url in (hub_url, mirror_url):
            wait_for(f"the withdrawal at {url}", lambda url=url: not hits(url))
            gone = httpx.get(f"{url}/api/v1/eu/records/{rid}").json()
            assert gone["withdrawn"] and gone["body"] is None
        # The mirror's own practice search keeps to French records; the pool is separate.
        local = httpx.get(f"{mirror_url}/api/v1/practices/search", params={"q": words}).json()
        assert local["total"] == 0
        status = httpx.get(f"{mirror_url}/api/v1/hub/peers", headers={}).status_code
        assert status == 401  # sync status is for administrators
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
