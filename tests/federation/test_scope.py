"""A sharing scope on every practice and study-visit report, enforced at every hop.

One federation per database backend, as real processes on 127.0.0.1: a Portuguese node, the EU
hub (which enrols it, and the French node) and a French node that mirrors the hub. PT trusts the
hub to read its `network` entries (`integra hub trust`); the hub and the mirror sign their
requests for feed pages with their keys. The same federation's hub finds pooled study-visit
reports in its EU search (once tests/federation/test_visit_search_hub.py, with a federation of
its own). Then the unit tests of the scope's rules (API, CLI, audit, feed) on both databases."""

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation import keys, signed_requests, trust
from federation.canonical import canonical
from federation.merkle import leaf_hash, root
from node.core.db import utcnow
from node.core.models import AuditEntry
from node.core.settings import sync_url
from practices.schemas import PracticeCreate
from practices.service import create_practice
from tests import factories
from tests.conftest import Database, free_port, run_cli
from tests.factories import CONFIRMED, Headers, make_user
from tests.federation.conftest import (
    FAST,
    HUB_ENV,
    OPERATOR,
    enrol,
    in_db,
    member,
    ready,
    serve_node,
    stop,
    wait_for,
)

pytestmark = pytest.mark.anyio


def cli(db: str, data: Path, *args: str, env: dict[str, str] | None = None, **kw: Any) -> str:
    result = run_cli(*args, database_url=db, data_dir=data, env=env, **kw)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def federation(
    database: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """PT, the hub and the FR mirror, served; PT trusts the hub, the hub enrols PT and FR."""
    tmp = tmp_path_factory.mktemp("scope")
    ports = {name: free_port() for name in ("pt", "hub", "fr")}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    db = {name: database.fresh_copy() for name in ports}
    data = {name: tmp / name for name in ports}
    env = {"pt": {"INTEGRA_COUNTRY": "PT"}, "hub": HUB_ENV | FAST, "fr": {"INTEGRA_COUNTRY": "FR"}}
    env["fr"] |= FAST
    made = {
        n: member(db[n], data[n], env[n]["INTEGRA_COUNTRY"], env[n].get("INTEGRA_ROLE", "node"))
        for n in ports
    }
    public = {n: key for n, (key, _) in made.items()}
    enrol(db["hub"], "PT", url["pt"], public["pt"], "node")
    enrol(db["fr"], "EU", url["hub"], public["hub"], "hub")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        # Each ready before the next, which pulls it (the hub PT, the mirror the hub): a first
        # pull that fails waits out a backoff (30 s and more), and a hub is not ready while a
        # peer fails. So the hub enrols FR once FR answers: enrolled before, the hub's first
        # pull of FR failed and the hub never became ready (240 s, then every test in error).
        for name in ports:
            full = env[name] | {"DATABASE_URL": db[name], "INTEGRA_DATA_DIR": str(data[name])}
            processes.append(serve_node(name, tmp, ports[name], full))
            wait_for(f"{name} to be ready", lambda name=name: ready(url[name]), 240)
        enrol(db["hub"], "FR", url["fr"], public["fr"], "node")
        fingerprint = keys.fingerprint(keys.key_id_of(keys.unb64(public["hub"])))
        trusted = cli(
            db["pt"], data["pt"], "hub", "trust", url["hub"], "--fingerprint", fingerprint,
            env=env["pt"],
        )  # fmt: skip
        assert "trusting the hub EU" in trusted
        yield {
            "url": url,
            "db": db,
            "data": data,
            "env": env,
            "admin": {n: headers for n, (_, headers) in made.items()},
            "hub_key": keys.load(next((data["hub"] / "keys").glob("*.pem"))),
            "fr_key": keys.load(next((data["fr"] / "keys").glob("*.pem"))),
        }
    finally:
        stop(processes)


def published(node: dict[str, Any], path: str, body: dict[str, Any], *, action: str) -> Any:
    """Create a record on PT and publish it (a study-visit report: submitted first)."""
    url, admin = node["url"]["pt"], node["admin"]["pt"]
    made = httpx.post(f"{url}/api/v1/{path}", json=body, headers=admin)
    assert made.status_code == 201, made.text
    record = f"{url}/api/v1/{path}/{made.json()['id']}"
    etag = made.headers["etag"]
    if action == "submit":
        submitted = httpx.post(f"{record}/submit", headers=admin | {"If-Match": etag})
        etag = submitted.headers["etag"]
    done = httpx.post(f"{record}/publish", json=CONFIRMED, headers=admin | {"If-Match": etag})
    assert done.status_code == 200, done.text
    return done


def visit(title: str, **overrides: Any) -> dict[str, Any]:
    return {
        "title": title,
        "language": "en",
        "organising_authority": {"name": "DGRSP"},
        "host_country": "GR",
        "start_date": "2026-09-22",
        "end_date": "2026-09-24",
        "purpose": "Exchange on post-release support.",
        "delegation": [{"profession": "probation officer", "count": 3}],
        "findings": "Post-release support starts before release.",
    } | overrides


def eu_hits(base: str, words: str, headers: Headers | None = None) -> list[str]:
    page = httpx.get(f"{base}/api/v1/eu/search", params={"q": words}, headers=headers or {})
    assert page.status_code == 200, page.text
    return [hit["record_id"] for hit in page.json()["items"]]


def eu_record(base: str, rid: str, headers: Headers | None = None) -> httpx.Response:
    return httpx.get(f"{base}/api/v1/eu/records/{rid}", headers=headers or {})


def feed_page(base: str, headers: dict[str, str] | None = None) -> httpx.Response:
    query = {"after": 0, "limit": 1000}  # as `signed` signs it
    return httpx.get(f"{base}/federation/v1/feed", params=query, headers=headers or {})


def entries_of(page: httpx.Response, rid: str) -> list[dict[str, Any]]:
    assert page.status_code == 200, page.text
    found = []
    for entry in page.json()["entries"]:
        payload = entry.get("payload", {})
        inner = payload.get("envelope", {}).get("payload", {}) if "envelope" in payload else {}
        if rid in (payload.get("id"), inner.get("id")):
            found.append(entry)
    return found


def signed(key: keys.SigningKey, query: str = "after=0&limit=1000", **kw: Any) -> dict[str, str]:
    return signed_requests.sign(key, "GET", f"/federation/v1/feed?{query}", **kw)


def test_a_network_report_reaches_signed_in_readers_only_at_the_hub_and_on_a_mirror(
    federation: dict[str, Any],
) -> None:
    url, admin = federation["url"], federation["admin"]
    words = f"Tessaloniki{uuid.uuid4().hex[:6]}"
    title = f"Visit to {words}"
    made = published(federation, "study-visits", visit(title), action="submit")
    assert made.json()["scope"] == "network"  # a report's default
    rid = f"PT:{made.json()['id']}"

    for where in ("hub", "fr"):  # signed in: found and shown, with its body
        wait_for(f"the report at {where}", lambda w=where: rid in eu_hits(url[w], words, admin[w]))
        shown = eu_record(url[where], rid, admin[where])
        assert shown.status_code == 200 and shown.json()["body"]["title"] == title
        assert shown.json()["scope"] == "network"
        # Anonymous: not in the hits (nor the total), not by id, not on the web pages.
        assert rid not in eu_hits(url[where], words)
        anonymous = httpx.get(f"{url[where]}/api/v1/eu/search", params={"q": words}).json()
        assert anonymous["total"] == 0
        assert eu_record(url[where], rid).status_code == 404
        assert httpx.get(f"{url[where]}/eu/records/{rid}").status_code == 404
        web = {"scope": "eu"} if where == "fr" else {}
        searched = httpx.get(f"{url[where]}/", params={"q": words} | web).text
        assert title not in searched and rid not in searched
        session = {"integra_session": admin[where]["Authorization"].removeprefix("Bearer ")}
        page = httpx.get(f"{url[where]}/eu/records/{rid}", cookies=session)
        assert page.status_code == 200 and title in page.text
    # PT's own pages: signed in only.
    assert httpx.get(f"{url['pt']}/study-visits/{made.json()['id']}").text.count(title) == 0

    # Both feeds: anonymous readers get the signed entry without its body, and the checkpoint
    # still verifies over what they got; nothing of the report's text is in the page.
    for where in ("pt", "hub"):
        page = feed_page(url[where])
        [entry] = [e for e in entries_of(page, rid) if e["payload"]["op"] == "upsert"]
        assert entry["body"] is None and entry["withheld"] == "network"
        assert words not in page.text and "probation officer" not in page.text
        leaves = [
            bytes.fromhex(e["leaf"]) if "leaf" in e else leaf_hash(canonical(e["payload"]))
            for e in page.json()["entries"]
        ]
        checkpoint = httpx.get(f"{url[where]}/federation/v1/checkpoint").json()["checkpoint"]
        assert checkpoint["size"] == len(leaves) and root(leaves).hex() == checkpoint["root"]
    # The hub, signing with its key, reads PT's network entries whole; the mirror the hub's.
    for where, key in (("pt", "hub_key"), ("hub", "fr_key")):
        whole = feed_page(url[where], signed(federation[key]))
        [entry] = [e for e in entries_of(whole, rid) if e["payload"]["op"] == "upsert"]
        assert entry["body"]["title"] == title and "withheld" not in entry


def test_a_national_record_never_enters_a_feed(federation: dict[str, Any]) -> None:
    url = federation["url"]
    words = f"Nacional{uuid.uuid4().hex[:6]}"
    body = factories.practice(title=f"Prison chaplaincy {words}", country="PT", scope="national")
    made = published(federation, "practices", body, action="publish")
    rid = f"PT:{made.json()['id']}"
    control = published(
        federation, "practices", factories.practice(title=f"Control {words}"), action="publish"
    )
    control_id = f"PT:{control.json()['id']}"
    # Once the record published after it is everywhere, the national one would be there too.
    wait_for("the control at the mirror", lambda: control_id in eu_hits(url["fr"], words))
    for where in ("pt", "hub", "fr"):
        assert entries_of(feed_page(url[where]), rid) == []
    assert entries_of(feed_page(url["pt"], signed(federation["hub_key"])), rid) == []
    assert entries_of(feed_page(url["hub"], signed(federation["fr_key"])), rid) == []
    for where in ("hub", "fr"):
        admin = federation["admin"][where]
        assert rid not in eu_hits(url[where], words, admin)
        assert eu_record(url[where], rid, admin).status_code == 404
    # On its node: signed-in users only.
    assert httpx.get(f"{url['pt']}/api/v1/practices/{made.json()['id']}").status_code == 404
    shown = httpx.get(
        f"{url['pt']}/api/v1/practices/{made.json()['id']}", headers=federation["admin"]["pt"]
    )
    assert shown.status_code == 200 and shown.json()["scope"] == "national"


def test_narrowing_a_scope_withdraws_the_record_at_the_hub_and_on_mirrors(
    federation: dict[str, Any],
) -> None:
    url, admin = federation["url"], federation["admin"]
    words = f"Narrow{uuid.uuid4().hex[:6]}"
    made = published(
        federation, "practices", factories.practice(title=f"Mentoring {words}"), action="publish"
    )
    local_id, rid = made.json()["id"], f"PT:{made.json()['id']}"
    for where in ("hub", "fr"):
        wait_for(f"the practice at {where}", lambda w=where: rid in eu_hits(url[w], words))

    # public → network: appended again with that scope; anonymous readers lose it.
    narrowed = httpx.post(
        f"{url['pt']}/api/v1/practices/{local_id}/scope",
        json={"scope": "network", "reason": "shared with professionals only"},
        headers=admin["pt"] | {"If-Match": made.headers["etag"]},
    )
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "network"
    assert narrowed.json()["version"] == made.json()["version"] + 1
    for where in ("hub", "fr"):
        wait_for(f"{where} to narrow it", lambda w=where: rid not in eu_hits(url[w], words))
        assert eu_record(url[where], rid).status_code == 404
        assert rid in eu_hits(url[where], words, admin[where])
    assert httpx.get(f"{url['pt']}/api/v1/practices/{local_id}").status_code == 404

    # network → national, from the CLI: a signed tombstone withdraws it everywhere.
    said = cli(
        federation["db"]["pt"], federation["data"]["pt"], "practices", "scope", local_id,
        "national", "--reason", "kept at home", env=federation["env"]["pt"],
    )  # fmt: skip
    assert "scope national" in said
    [*_, last] = entries_of(feed_page(url["pt"]), rid)
    assert last["payload"]["op"] == "withdraw"
    for where in ("hub", "fr"):
        wait_for(
            f"{where} to withdraw it",
            lambda w=where: eu_record(url[w], rid, admin[w]).json()["withdrawn"],
        )
        assert rid not in eu_hits(url[where], words, admin[where])
    # Widening again (the National Point) appends it again.
    widened = cli(
        federation["db"]["pt"], federation["data"]["pt"], "practices", "scope", local_id,
        "public", env=federation["env"]["pt"],
    )  # fmt: skip
    assert "scope public" in widened
    for where in ("hub", "fr"):
        wait_for(f"{where} to find it again", lambda w=where: rid in eu_hits(url[w], words))
    audit = rows(
        federation["db"]["pt"],
        "SELECT actor, detail FROM audit_entry"
        f" WHERE action = 'scope' AND entity_id = '{local_id}'",
    )
    changes = [json.loads(d)["scope"] if isinstance(d, str) else d["scope"] for _, d in audit]
    assert {"from": "public", "to": "network"} in changes
    assert {"from": "network", "to": "national"} in changes


def rows(db: str, sql: str) -> list[Any]:
    engine = create_engine(sync_url(db))
    with engine.connect() as conn:
        rows = list(conn.execute(text(sql)))
    engine.dispose()
    return rows


def test_forged_replayed_and_expired_signed_requests_are_refused(
    federation: dict[str, Any],
) -> None:
    url, hub_key = federation["url"]["pt"], federation["hub_key"]
    published(federation, "study-visits", visit("Visit to Plovdiv"), action="submit")

    headers = signed(hub_key)
    first = feed_page(url, headers)
    assert first.status_code == 200 and "Plovdiv" in first.text
    replayed = feed_page(url, headers)
    assert replayed.status_code == 401 and "replay" in replayed.json()["detail"]

    old = int((utcnow() - timedelta(minutes=5)).timestamp())
    expired = feed_page(url, signed(hub_key, created=old))
    assert expired.status_code == 401 and "clock" in expired.json()["detail"]
    ahead = int((utcnow() + timedelta(minutes=5)).timestamp())
    assert feed_page(url, signed(hub_key, created=ahead)).status_code == 401

    # Another query than the one signed; another key under the hub's key id; a bad spelling.
    moved = signed(hub_key, query="after=1&limit=1000")
    assert feed_page(url, moved).status_code == 401
    forger = keys.generate()
    forged = signed(forger)
    forged["Signature-Input"] = forged["Signature-Input"].replace(forger.key_id, hub_key.key_id)
    assert feed_page(url, forged).status_code == 401
    mangled = signed(hub_key)
    mangled["Signature"] = mangled["Signature"].rstrip(":") + "AA:"
    assert feed_page(url, mangled).status_code == 401
    # A key this node does not know: served as anyone is, network bodies withheld.
    stranger = feed_page(url, signed(forger))
    assert stranger.status_code == 200 and "Plovdiv" not in stranger.text
    assert any(e.get("withheld") == "network" for e in stranger.json()["entries"])


# --- the EU search at the hub: pooled reports, with the record-type facet -------------------


def eu_page(hub: str, cookies: dict[str, str] | None = None, **params: str) -> str:
    page = httpx.get(f"{hub}/", params=params, cookies=cookies or {})
    assert page.status_code == 200, page.text
    return page.text


def type_counts(html: str) -> dict[str, int]:
    found = re.findall(
        r'name="type" value="(\w+)"[^>]*>\s*<label[^>]*>[^<]*<span class="count">\((\d+)\)', html
    )
    return {value: int(count) for value, count in found}


def test_the_eu_search_finds_pooled_reports_with_the_record_type_facet(
    federation: dict[str, Any],
) -> None:
    """By the same rule as pooled practices: a `public` report for anyone, a `network` one for
    signed-in readers only (its words made unique to this test: the hub holds others')."""
    url, admin = federation["url"], federation["admin"]
    word = f"Matosinhos{uuid.uuid4().hex[:6]}"
    findings = f"Os reclusos de {word} participam em programas de desvinculação."
    public = published(
        federation,
        "study-visits",
        visit(f"Visita de estudo {word}", language="pt", scope="public", findings=findings),
        action="submit",
    )
    network = published(
        federation,
        "study-visits",
        visit(f"Visita reservada {word}", language="pt", findings=findings),
        action="submit",
    )
    public_link = f'href="/eu/records/PT:{public.json()["id"]}"'
    network_link = f'href="/eu/records/PT:{network.json()["id"]}"'
    token = admin["hub"]["Authorization"].removeprefix("Bearer ")
    signed_in = {"integra_session": token}

    # a word form of the findings ("recluso" for "reclusos"), with the word that makes it ours
    def both_found() -> str | None:
        page = eu_page(url["hub"], signed_in, q=f"recluso {word}")
        return page if network_link in page and public_link in page else None

    both = wait_for("both reports in the hub's index", both_found)
    assert type_counts(both) == {"practice": 0, "study_visit": 2}
    assert "Study-visit report" in both

    anonymous = eu_page(url["hub"], q=f"recluso {word}", type="study_visit")
    assert public_link in anonymous and network_link not in anonymous
    assert type_counts(anonymous) == {"practice": 0, "study_visit": 1}
    assert re.search(r'value="study_visit" checked', anonymous)
    practices_only = eu_page(url["hub"], q=f"recluso {word}", type="practice")
    assert public_link not in practices_only and "0 practices found" in practices_only


# --- the rules, on both databases -------------------------------------------------------------


@pytest.fixture
async def admin(
    sessions: async_sessionmaker[AsyncSession], signing_key: keys.SigningKey
) -> Headers:
    return await make_user(sessions, "admin")


async def test_the_scope_is_in_the_api_and_only_the_national_point_widens_it(
    client: httpx.AsyncClient, admin: Headers, sessions: async_sessionmaker[AsyncSession]
) -> None:
    org = await factories.create_organisation(client, admin, country="PT")
    editor = await make_user(sessions, "editor", organisations=[org["id"]])
    mine = [{"organisation_id": org["id"], "role": "responsible"}]
    draft = await client.post(
        "/api/v1/practices",
        json=factories.practice(organisations=mine, scope="network"),
        headers=editor,
    )
    assert draft.status_code == 201 and draft.json()["scope"] == "network"
    url = f"/api/v1/practices/{draft.json()['id']}"
    wider = await client.patch(
        url, json={"scope": "public"}, headers=editor | {"If-Match": draft.headers["etag"]}
    )
    assert wider.status_code == 403 and "widens" in wider.json()["detail"]
    narrower = await client.patch(
        url, json={"scope": "national"}, headers=editor | {"If-Match": draft.headers["etag"]}
    )
    assert narrower.status_code == 200 and narrower.json()["scope"] == "national"
    etag = {"If-Match": narrower.headers["etag"]}
    by_editor = await client.post(f"{url}/scope", json={"scope": "public"}, headers=editor | etag)
    assert by_editor.status_code == 403
    bad = await client.post(f"{url}/scope", json={"scope": "everyone"}, headers=admin | etag)
    assert bad.status_code == 422 and "scope" in bad.text
    null = await client.patch(url, json={"scope": None}, headers=admin | etag)
    assert null.status_code == 422
    stale = await client.post(
        f"{url}/scope", json={"scope": "public"}, headers=admin | {"If-Match": '"1"'}
    )
    assert stale.status_code == 412
    widened = await client.post(
        f"{url}/scope", json={"scope": "public", "reason": "reviewed"}, headers=admin | etag
    )
    assert widened.status_code == 200 and widened.json()["scope"] == "public"
    assert widened.headers["etag"] != narrower.headers["etag"]
    async with sessions() as session:
        entries = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.entity_id == draft.json()["id"])
                .order_by(AuditEntry.id)
            )
        ).all()
    scopes = [
        (e.action, (e.detail or {}).get("scope")) for e in entries if "scope" in (e.detail or {})
    ]
    assert scopes == [
        ("update", {"from": "network", "to": "national"}),
        ("scope", {"from": "national", "to": "public"}),
    ]
    assert entries[-1].detail["reason"] == "reviewed"

    # A report: `network` by default; its author may not make it public, the National Point may.
    author = await make_user(sessions, "editor")
    report = visit("Visit to Sofia")
    refused = await client.post(
        "/api/v1/study-visits", json=report | {"scope": "public"}, headers=author
    )
    assert refused.status_code == 403
    made = await client.post("/api/v1/study-visits", json=report, headers=author)
    assert made.status_code == 201 and made.json()["scope"] == "network"
    changed = await client.post(
        f"/api/v1/study-visits/{made.json()['id']}/scope",
        json={"scope": "public"},
        headers=admin | {"If-Match": made.headers["etag"]},
    )
    assert changed.status_code == 200 and changed.json()["scope"] == "public"


async def test_anonymous_readers_of_a_node_see_public_practices_only(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    words = f"Scoped{uuid.uuid4().hex[:6]}"
    shown = {}
    for scope in ("public", "network", "national"):
        made = await factories.publish_practice(
            client, admin, title=f"{words} {scope}", scope=scope, country="PT"
        )
        shown[scope] = made["id"]
    for headers, seen in (({}, {"public"}), (admin, {"public", "network", "national"})):
        response = await client.get(
            "/api/v1/practices/search", params={"q": words}, headers=headers
        )
        found = response.json()
        assert {h["title"].split()[-1] for h in found["items"]} == seen
        assert found["total"] == len(seen)
        listed = (await client.get("/api/v1/practices", headers=headers)).json()["items"]
        assert {p["title"].split()[-1] for p in listed if words in p["title"]} == seen
        for scope, local_id in shown.items():
            one = await client.get(f"/api/v1/practices/{local_id}", headers=headers)
            assert one.status_code == (200 if scope in seen else 404)


async def test_the_feed_carries_the_scope_and_a_narrowing_as_the_feed_follows(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    made = await factories.publish_practice(client, admin, title="Restorative circles")
    rid = f"PT:{made['id']}"
    url = f"/api/v1/practices/{made['id']}/scope"
    etag = f'"{made["version"]}"'
    history = []
    for scope in ("network", "public", "national", "network"):
        changed = await client.post(url, json={"scope": scope}, headers=admin | {"If-Match": etag})
        assert changed.status_code == 200, changed.text
        etag = changed.headers["etag"]
        page = (await client.get("/federation/v1/feed", params={"limit": 100})).json()
        [*_, last] = [e for e in page["entries"] if e["payload"]["id"] == rid]
        history.append((last["payload"]["op"], last["payload"]["scope"], last["body"] is None))
    assert history == [
        ("upsert", "network", True),  # appended again, its body withheld from anonymous readers
        ("upsert", "public", False),
        ("withdraw", "public", True),  # a signed tombstone: `national` never leaves the node
        ("upsert", "network", True),
    ]
    # The same scope again changes nothing, in the record or in the feed.
    same = await client.post(url, json={"scope": "network"}, headers=admin | {"If-Match": etag})
    assert same.status_code == 200 and same.headers["etag"] == etag


def test_the_cli_sets_a_scope_audited(database: Database, tmp_path: Path) -> None:
    db, data = database.fresh_copy(), tmp_path / "pt"
    body = PracticeCreate.model_validate(factories.practice(ref="pt-fgc"))
    local_id = str(in_db(db, lambda s: create_practice(s, body, by=OPERATOR)).id)
    assert "scope network" in cli(db, data, "practices", "scope", local_id, "network")
    for wrong, said in ((str(uuid.uuid4()), "No practice or study-visit report"), ("x", "UUID")):
        refused = run_cli("practices", "scope", wrong, "network", database_url=db, data_dir=data)
        assert refused.returncode != 0 and said in refused.stderr, refused.stderr
    refused = run_cli("practices", "scope", local_id, "world", database_url=db, data_dir=data)
    assert refused.returncode != 0 and "public, network or national" in refused.stderr
    [(scope,)] = rows(db, "SELECT scope FROM practice WHERE ref = 'pt-fgc'")
    [(actor, detail)] = rows(db, "SELECT actor, detail FROM audit_entry WHERE action = 'scope'")
    detail = json.loads(detail) if isinstance(detail, str) else detail
    assert scope == "network" and actor.startswith("cli:")
    assert detail["scope"] == {"from": "public", "to": "network"}


async def test_a_reader_peer_signs_for_network_entries_once_within_the_window(
    client: httpx.AsyncClient, admin: Headers, sessions: async_sessionmaker[AsyncSession]
) -> None:
    hub = keys.generate()
    [parsed] = trust.parse_public_keys([hub.public_b64])
    async with sessions() as session:
        await trust.trust_hub(
            session, origin="EU", url="http://127.0.0.1:9", key=parsed, by=OPERATOR
        )
        await session.commit()
    made = await client.post("/api/v1/study-visits", json=visit("Visit to Braga"), headers=admin)
    url = f"/api/v1/study-visits/{made.json()['id']}"
    done = await client.post(f"{url}/submit", headers=admin | {"If-Match": made.headers["etag"]})
    await client.post(
        f"{url}/publish", json=CONFIRMED, headers=admin | {"If-Match": done.headers["etag"]}
    )
    query = {"after": 0, "limit": 1000}
    anonymous = await client.get("/federation/v1/feed", params=query)
    [entry] = anonymous.json()["entries"]
    assert entry["withheld"] == "network" and "Braga" not in anonymous.text
    headers = signed(hub)
    whole = await client.get("/federation/v1/feed", params=query, headers=headers)
    assert (
        whole.status_code == 200 and whole.json()["entries"][0]["body"]["title"] == "Visit to Braga"
    )
    again = await client.get("/federation/v1/feed", params=query, headers=headers)
    assert again.status_code == 401 and "replay" in again.json()["detail"]
    late = signed(hub, created=int((utcnow() - timedelta(seconds=90)).timestamp()))
    assert (await client.get("/federation/v1/feed", params=query, headers=late)).status_code == 401
    # The hub's key revoked here: its signed requests are refused, not read as anonymous.
    async with sessions() as session:
        await trust.revoke_peer_key(session, key_id=hub.key_id, by=OPERATOR)
        await session.commit()
    revoked = await client.get("/federation/v1/feed", params=query, headers=signed(hub))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
