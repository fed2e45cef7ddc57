"""Acceptance: whatever a node holds, nothing personal reaches the hub.

A real Bulgarian node process knows people (contact points in three scripts, study-visit
participants, its admin) and holds their names, e-mails and phones everywhere it can: in the
text of practices and study-visit reports (exact, in Greek capitals without accents, in
Bulgarian inflected and definite forms, as "name [at] domain", as national phone numbers) and
in fields the shareable projection leaves out (contact points, participant names, review
comments, a withdrawal reason, a practice's ref, an organisation's description). A real hub
then pulls the node's feed, and the hub's whole database is searched for every one of them:
the raw bytes of the SQLite file, or every table of the PostgreSQL database dumped as text.
"""

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from federation.gate.scripts import transliterate
from node.core.settings import sync_url
from node.core.text import fold
from tests import factories
from tests.conftest import KEPT_SETTINGS, Database, free_port, run_cli
from tests.federation.conftest import administrator, enrol, new_signing_key
from tests.federation.forgery import held_records

COUNTRY = "BG"
ADMIN_NAME, ADMIN_EMAIL = "Gwendolyn Achterberg", "g.achterberg@np.example.bg"


@dataclass(frozen=True)
class Contact:
    country: str
    name: str
    email: str
    phones: tuple[str, ...]
    e164: tuple[str, ...]


CONTACTS = (
    Contact(
        "PT",
        "Mairéad Ó Fearghail",
        "mairead.ofearghail@dgrsp.example.pt",
        ("213 456 789",),
        ("+351213456789",),
    ),
    Contact(
        "GR",
        "Ευανθία Καραμπουρνιώτη",
        "e.karampournioti@minocp.example.gr",
        ("210 555 0142",),
        ("+302105550142",),
    ),
    Contact(
        "BG",
        "Радослав Кирязов",
        "r.kiryazov@mjs.example.bg",
        ("02 987 6543", "0888 123 456"),
        ("+35929876543", "+359888123456"),
    ),
)
PARTICIPANTS = ("Стефка Дренчева", "Ξενοφών Λιακόπουλος", "Bérénice Quintanilha")
VISIT_EMAIL, VISIT_PHONE = "stefka.drencheva@mjs.example.bg", "0887 654 321"


@dataclass(frozen=True)
class Plant:
    """Personal data written into a shared field: the gate must find it there."""

    field: str
    text: str
    detector: str  # a word of the hit's detector: "name", "e-mail", "phone"


@dataclass(frozen=True)
class Held:
    record_type: str
    overrides: dict[str, Any]
    plants: tuple[Plant, ...]


HELD = {
    "an exact Latin name, and the admin's surname": Held(
        "practice",
        {
            "summary": "Peer mentoring run by Mairéad Ó Fearghail for young adults on probation.",
            "rationale": "Designed with Gwendolyn Achterberg's team after a pilot.",
        },
        (
            Plant("summary", "Mairéad Ó Fearghail", "name"),
            Plant("rationale", "Gwendolyn Achterberg", "name"),
        ),
    ),
    "a Greek name in capitals without accents": Held(
        "practice",
        {
            "language": "el",
            "summary": "Ομάδες υποστήριξης για νέους υπό επιτήρηση.",
            "description": "Τον συντονισμό είχε η ΕΥΑΝΘΙΑ ΚΑΡΑΜΠΟΥΡΝΙΩΤΗ από την αρχή.",
        },
        (Plant("description", "ΕΥΑΝΘΙΑ ΚΑΡΑΜΠΟΥΡΝΙΩΤΗ", "name"),),
    ),
    "a Bulgarian surname in the feminine": Held(
        "practice",
        {
            "language": "bg",
            "summary": "Наставничество след освобождаване от затвора.",
            "lessons_learned": "Според г-жа Кирязова наставниците се нуждаят от супервизия.",
        },
        (Plant("lessons_learned", "Кирязова", "name"),),
    ),
    "Bulgarian surnames in definite forms": Held(
        "practice",
        {
            "language": "bg",
            "summary": "Програма за семейна подкрепа при реинтеграция.",
            "rationale": "Моделът е предложен от Кирязовите; Дренчевата методика го допълва.",
        },
        (
            Plant("rationale", "Кирязовите", "name"),
            Plant("rationale", "Дренчевата", "name"),
        ),
    ),
    "an e-mail written name [at] domain": Held(
        "practice",
        {
            "translations": [
                {
                    "language": "fr",
                    "title": "Mentorat après la libération",
                    "summary": "Écrire à e.karampournioti [at] minocp.example.gr pour les outils.",
                }
            ]
        },
        (Plant("translations.0.summary", "e.karampournioti [at] minocp.example.gr", "e-mail"),),
    ),
    "phone numbers in national format": Held(
        "practice",
        {
            "staffing": "Two mentors. Duty line 0888 123 456, switchboard 02 987 6543; "
            "Athens desk 210 555 0142; Lisbon desk 213 456 789."
        },
        (
            Plant("staffing", "0888 123 456", "phone"),
            Plant("staffing", "02 987 6543", "phone"),
            Plant("staffing", "210 555 0142", "phone"),
            Plant("staffing", "213 456 789", "phone"),
        ),
    ),
    "participants' names in a study-visit report": Held(
        "study_visit",
        {
            "findings": "The sessions led by ДРЕНЧЕВА and the team of Λιακόπουλου helped most.",
            "observations": "QUINTANILHA noted how families are involved.",
        },
        (
            Plant("findings", "ДРЕНЧЕВА", "name"),
            Plant("findings", "Λιακόπουλου", "name"),
            Plant("observations", "QUINTANILHA", "name"),
        ),
    ),
}


def secrets() -> list[str]:
    """Everything personal the node holds, as it was written and as the plants disguise it."""
    people = [ADMIN_NAME, *PARTICIPANTS, *(c.name for c in CONTACTS)]
    words = [w for p in people for w in re.findall(r"[^\W\d_]{4,}", p)]
    out = [*people, *words, ADMIN_EMAIL, VISIT_EMAIL, VISIT_PHONE]
    phones = [VISIT_PHONE]
    for contact in CONTACTS:
        out += [contact.email, contact.email.partition("@")[0], *contact.e164]
        phones += [*contact.phones, *contact.e164]
    digits = [re.sub(r"\D", "", p) for p in phones]  # the digits alone, with and without the 0
    out += [*phones, *digits, *(d.lstrip("0") for d in digits)]
    # Stems, so that any inflection counts (Кирязовите, Λιακόπουλου), and Latin spellings.
    out += ["Кирязов", "Дренчев", "Λιακόπουλ", "Καραμπουρνι", "Kiryazov", "Drenchev"]
    out += ["Karampourni", "Karabourni", "Liakopoul", "Fearghail", "[at] minocp"]
    out += [email.partition("@")[0] for email in (ADMIN_EMAIL, VISIT_EMAIL)]
    return sorted(set(out))


def needles(secret: str) -> set[bytes]:
    """The byte forms a string may be stored in: any case, accents folded, Latin
    transliteration, and JSON's \\u escapes (SQLAlchemy's JSON columns write those)."""
    forms = {secret, secret.lower(), secret.upper(), fold(secret), fold(secret).upper()}
    forms |= {transliterate(secret)}
    out = set()
    for form in forms:
        out.add(form.encode().lower())
        out.add(json.dumps(form)[1:-1].encode().lower())
    return out


def found_in(haystack: bytes, secret: str) -> bool:
    lowered = haystack.lower()  # ASCII only: other scripts are covered by the forms above
    return any(needle in lowered for needle in needles(secret))


# --- processes ----------------------------------------------------------------------------


def cli(db: str, data: Path, *args: str, stdin: str | None = None) -> str:
    result = run_cli(*args, database_url=db, data_dir=data, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def node(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp_path = tmp_path_factory.mktemp("privacy-node")
    db, data = database.fresh_copy(), tmp_path / "bg"
    # As `keys init`, `user add` and `token create` (run by tests/node/test_cli.py), here
    public = new_signing_key(db, data, COUNTRY)
    headers = administrator(db, email=ADMIN_EMAIL, name=ADMIN_NAME)
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("INTEGRA_") or k in KEPT_SETTINGS
    }
    env |= {"DATABASE_URL": db, "INTEGRA_DATA_DIR": str(data), "INTEGRA_COUNTRY": COUNTRY}
    log = (tmp_path / "node.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "node", "serve", "--sample-data", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), 90, lambda: (tmp_path / "node.log").read_text()[-3000:])
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            yield {"url": url, "public_key": public, "client": client}
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait_until(
    check: Callable[[], bool], seconds: float, explain: Callable[[], str] = lambda: ""
) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds}s: {explain()}")
        time.sleep(0.3)


# --- the node's records -------------------------------------------------------------------


def send(
    client: httpx.Client, method: str, path: str, etag: str | None = None, **kw: Any
) -> httpx.Response:
    headers = {"If-Match": etag} if etag else {}
    response = client.request(method, f"/api/v1{path}", headers=headers, **kw)
    assert response.status_code in (200, 201), f"{method} {path}: {response.text}"
    return response


def organisations(client: httpx.Client) -> dict[str, str]:
    """One organisation per country, each with a contact point; the Bulgarian one also
    describes its head of unit in its (never shared) description and address."""
    ids = {}
    for contact in CONTACTS:
        extra: dict[str, Any] = {"country": contact.country, "region": None}
        if contact.country == "BG":
            extra["description"] = f"Head of unit: {contact.name}, {contact.phones[0]}."
            extra["address"] = {"street": f"c/o {contact.name}", "locality": "София"}
        org = send(client, "POST", "/organisations", json=factories.organisation(**extra)).json()
        phones = [{"number": p, "type": "landline"} for p in contact.phones]
        body = factories.contact(name=contact.name, email=contact.email, phones=phones)
        body["department"] = f"Office of {contact.name}"
        created = send(client, "POST", f"/organisations/{org['id']}/contact-points", json=body)
        assert created.json()["phones"][0]["number"] == contact.e164[0]
        ids[contact.country] = org["id"]
    return ids


def practice(client: httpx.Client, **overrides: Any) -> httpx.Response:
    body = factories.practice(country=COUNTRY) | overrides
    return send(client, "POST", "/practices", json=body)


def publish_practice(client: httpx.Client, created: httpx.Response) -> httpx.Response:
    path = f"/practices/{created.json()['id']}/publish"
    return send(client, "POST", path, etag=created.headers["etag"], json=factories.CONFIRMED)


def study_visit(client: httpx.Client, orgs: dict[str, str], **overrides: Any) -> httpx.Response:
    body = {
        "title": f"Учебно посещение в Лисабон {uuid.uuid4().hex[:6]}",
        "language": "bg",
        "organising_authority": {"organisation_id": orgs["BG"]},
        "host_country": "PT",
        "host_organisations": [{"organisation_id": orgs["PT"]}],
        "start_date": "2025-03-10",
        "end_date": "2025-03-12",
        "purpose": "Обмен на опит в наставничеството на освободени лица.",
        "delegation": [
            {"profession": "пробационен служител", "count": 2},
            {
                "profession": "социален работник",
                "count": 1,
                "home_organisation": {"organisation_id": orgs["GR"]},
            },
        ],
        "participant_names": list(PARTICIPANTS),
        "findings": "Наставничеството работи, когато е дългосрочно.",
        "addressed_to": ["Министерство на правосъдието (BG)"],
    }
    return send(client, "POST", "/study-visits", json=body | overrides)


def publish_visit(client: httpx.Client, created: httpx.Response, comment: str = "") -> None:
    visit_id = created.json()["id"]
    submitted = send(
        client, "POST", f"/study-visits/{visit_id}/submit", etag=created.headers["etag"]
    )
    if comment:  # review comments stay between the author and the National Point
        send(client, "POST", f"/study-visits/{visit_id}/comments", json={"comment": comment})
    send(
        client,
        "POST",
        f"/study-visits/{visit_id}/publish",
        etag=submitted.headers["etag"],
        json=factories.CONFIRMED,
    )


@dataclass
class Planted:
    held: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> the record as read
    clean: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> the record as read
    withdrawn: str = ""


def plant(client: httpx.Client) -> Planted:
    orgs = organisations(client)
    created: dict[str, httpx.Response] = {}
    for label, held in HELD.items():  # participants are known before anything is scanned
        if held.record_type == "study_visit":
            created[label] = study_visit(client, orgs, **held.overrides)
    # `public` (a report is `network` by default): it reaches a hub this node does not trust.
    visit = study_visit(client, orgs, scope="public")
    comment = f"Ask {PARTICIPANTS[0]} ({VISIT_EMAIL}, {VISIT_PHONE}) for the photos."
    publish_visit(client, visit, comment=comment)
    ref = f"kiryazov-0888123456-{uuid.uuid4().hex[:4]}"  # a ref is not shared
    linked = practice(client, ref=ref, organisations=[{"organisation_id": orgs["BG"]}])
    publish_practice(client, linked)
    for label, held in HELD.items():
        if held.record_type == "practice":
            created[label] = practice(client, **held.overrides)
            publish_practice(client, created[label])
        else:
            publish_visit(client, created[label])
    withdrawn = publish_practice(client, practice(client))
    person = CONTACTS[2]
    reason = f"At the request of {person.name} ({person.email}, {person.phones[0]})."
    path = f"/practices/{withdrawn.json()['id']}/withdraw"
    send(client, "POST", path, etag=withdrawn.headers["etag"], json={"reason": reason})
    return Planted(
        held={label: read(client, HELD[label].record_type, r) for label, r in created.items()},
        clean={
            "a study visit with participant names and a review comment": read(
                client, "study_visit", visit
            ),
            "a practice with a personal ref, linked to an organisation with contacts": read(
                client, "practice", linked
            ),
        },
        withdrawn=withdrawn.json()["id"],
    )


def read(client: httpx.Client, record_type: str, created: httpx.Response) -> dict[str, Any]:
    kind = "practices" if record_type == "practice" else "study-visits"
    return dict(send(client, "GET", f"/{kind}/{created.json()['id']}").json())


def feed(url: str) -> dict[str, dict[str, Any]]:
    """The node's feed: the last entry of each record id."""
    last: dict[str, dict[str, Any]] = {}
    after: int | None = 0
    while after is not None:
        page = httpx.get(f"{url}/federation/v1/feed", params={"after": after, "limit": 500}).json()
        last |= {e["payload"]["id"]: e["payload"] for e in page["entries"]}
        after = page["next_after"]
    return last


def holds(client: httpx.Client) -> dict[str, dict[str, Any]]:
    return {h["record_id"]: h for h in send(client, "GET", "/federation/holds").json()}


@pytest.fixture(scope="module")
def synced(
    node: dict[str, Any], database: Database, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The records planted and processed by the node, then one sync round of a fresh hub."""
    client = node["client"]
    planted = plant(client)
    records = [*planted.held.values(), *planted.clean.values(), {"id": planted.withdrawn}]

    def pending() -> list[str]:
        """Records the node has neither held nor put in its feed yet."""
        done = set(holds(client)) | {rid.partition(":")[2] for rid in feed(node["url"])}
        return [r["id"] for r in records if r["id"] not in done]

    wait_until(lambda: not pending(), 60, lambda: f"not processed: {pending()}")
    hub_db, hub_data = database.fresh_copy(), tmp_path_factory.mktemp("privacy-hub")
    enrol(hub_db, COUNTRY, node["url"], node["public_key"], "node")  # as `integra hub enrol`
    return {
        "planted": planted,
        "holds": holds(client),
        "feed": feed(node["url"]),
        "sync": cli(hub_db, hub_data, "hub", "sync"),
        "hub_db": hub_db,
    }


# --- the hub's database -------------------------------------------------------------------


def hub_rows(db: str, sql: str) -> list[Any]:
    engine = create_engine(sync_url(db))
    with engine.connect() as conn:
        rows = list(conn.execute(text(sql)))
    engine.dispose()
    return rows


def raw_files(db: str) -> dict[str, bytes]:
    """The SQLite database file and whatever journal sits beside it, byte for byte."""
    path = Path(db.removeprefix("sqlite:///"))
    files = [path, *(path.with_name(path.name + s) for s in ("-wal", "-journal", "-shm"))]
    return {f.name: f.read_bytes() for f in files if f.exists()}


def table_dumps(db: str) -> dict[str, bytes]:
    """Every table of the database (its catalog enumerated, none picked by hand) as text."""
    engine = create_engine(sync_url(db))
    out = {}
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            names = conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
            for name in list(names):
                rows = conn.execute(text(f'SELECT * FROM "{name}"'))
                out[name] = b"\n".join(b"\t".join(_bytes(v) for v in row) for row in rows)
        else:
            names = conn.scalars(
                text(
                    "SELECT format('%I.%I', table_schema, table_name)"
                    " FROM information_schema.tables"
                    " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                    " AND table_type = 'BASE TABLE'"
                )
            )
            for name in list(names):
                dumped = conn.scalars(text(f"SELECT t::text FROM {name} t"))
                out[name] = "\n".join(dumped).encode()
    engine.dispose()
    return out


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


# --- the checks ---------------------------------------------------------------------------


def at(record: dict[str, Any], path: str) -> str:
    value: Any = record
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return str(value)


def test_the_gate_holds_each_planted_record_with_the_reason_and_position(
    synced: dict[str, Any],
) -> None:
    for label, record in synced["planted"].held.items():
        hold = synced["holds"].get(record["id"])
        assert hold is not None, f"not held: {label}"
        assert hold["status"] == "held" and hold["version"] == record["version"]
        for plant in HELD[label].plants:
            written = at(record, plant.field)
            start = written.index(plant.text)
            found = [
                h
                for h in hold["hits"]
                if h["field"] == plant.field
                and plant.detector in h["detector"]
                and start <= h["start"] < h["end"] <= start + len(plant.text)
            ]
            assert found, f"{label}: {plant.text!r} in {plant.field} not reported: {hold['hits']}"


def test_clean_records_reach_the_hub_and_held_ones_do_not(synced: dict[str, Any]) -> None:
    planted, sync = synced["planted"], synced["sync"]
    assert re.search(rf"{COUNTRY}: [1-9]\d* applied, 0 unchanged, 0 refused", sync), sync
    at_hub = {
        rid: (withdrawn, json.loads(envelope)["payload"].get("body"))  # v2: beside, not in it
        for rid, (withdrawn, envelope) in held_records(synced["hub_db"]).items()
    }
    for label, record in planted.clean.items():
        rid = f"{COUNTRY}:{record['id']}"
        assert rid in at_hub and not at_hub[rid][0], f"{label} did not reach the hub"
        assert synced["feed"][rid]["op"] == "upsert"
    withdrawn, body = at_hub[f"{COUNTRY}:{planted.withdrawn}"]
    assert withdrawn and body is None  # a tombstone: the reason stays on the node
    for label, record in planted.held.items():
        rid = f"{COUNTRY}:{record['id']}"
        assert rid not in synced["feed"], f"{label} entered the node's feed"
        assert rid not in at_hub, f"{label} reached the hub"


def test_the_hubs_whole_database_contains_nothing_personal(synced: dict[str, Any]) -> None:
    db = synced["hub_db"]
    places = raw_files(db) if db.startswith("sqlite") else {}  # before a connection touches it
    raw = b"\n".join(places.values())
    places |= {f"table {name}": dump for name, dump in table_dumps(db).items()}
    for record in synced["planted"].clean.values():  # the search sees what the hub does hold
        assert found_in(b"\n".join(places.values()), record["title"]), record["title"]
        assert not db.startswith("sqlite") or found_in(raw, record["title"]), record["title"]
    leaks = [
        f"{secret!r} in {place}"
        for secret in secrets()
        for place, content in places.items()
        if found_in(content, secret)
    ]
    assert leaks == [], "\n".join(leaks)
