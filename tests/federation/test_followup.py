"""Recommendations followed up across the federation: a Portuguese node publishes a report
whose recommendations are addressed to two organisations of its registry; their primary
contact points are told by mail (through a real SMTP server in the test, down at first: the
mail waits and goes once it is up); an addressee's editor and the National Point walk one
recommendation to "implemented"; the hub's copy shows it, with no contact detail; withdrawn
with its reason, the report leaves the hub and its mirror (a signed tombstone)."""

import asyncio
import email
import email.policy
import os
import socketserver
import threading
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from node.core.db import create_engine as create_async_engine
from node.core.settings import async_url
from tests import factories
from tests.conftest import Database, free_port
from tests.federation.conftest import enrol, member
from tests.federation.forgery import held_records
from tests.federation.test_erasure import HUB, MIRROR, new_mirror, sync
from tests.federation.test_sync import cli, start, wait_for

CONTACTS = {"A": "liaison@dgrsp.example.pt", "B": "office@justice.example.pt"}
BYSTANDER = "desk@police.example.pt"  # a primary contact point of an organisation not addressed
ITEM_TO_A_AND_B = "Fund mentoring for two years, not one."
ITEM_TO_B_AND_EU = "Share risk-assessment training across borders."


class Mailbox(socketserver.ThreadingTCPServer):
    """A small SMTP server on a port of its own (in a thread): the messages it was sent,
    each with the recipients of its envelope."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []
        super().__init__(("127.0.0.1", port), SmtpSession)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class SmtpSession(socketserver.StreamRequestHandler):
    server: Mailbox

    def handle(self) -> None:
        recipients: list[str] = []
        self.wfile.write(b"220 mailbox ESMTP\r\n")
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command.upper()
            if verb.startswith("RCPT TO:"):
                recipients.append(command[8:].strip().strip("<>").lower())
                self.wfile.write(b"250 ok\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 go on\r\n")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                message = email.message_from_bytes(data, policy=email.policy.default)
                assert isinstance(message, EmailMessage)
                self.server.received.append((recipients, message))
                recipients = []
                self.wfile.write(b"250 kept\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:  # EHLO, MAIL FROM, RSET, NOOP
                self.wfile.write(b"250 ok\r\n")


def api(place: dict[str, Any], method: str, path: str, *, etag: str = "", **kw: Any) -> Any:
    headers = dict(kw.pop("headers", place["admin"]))
    if etag:
        headers["If-Match"] = etag
    return httpx.request(method, f"{place['url']}/api/v1{path}", headers=headers, **kw)


def ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code in (200, 201), response.text
    return response


@pytest.fixture(scope="module")
def federation(
    database: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A Portuguese node whose mail server is not up yet (its port is the test's), the hub it
    is enrolled with, and the node's registry: two organisations to address, one bystander,
    each with a primary contact point, and an editor of the first."""
    tmp_path = tmp_path_factory.mktemp("followup")
    db, data = database.fresh_copy(), tmp_path / "pt"
    public, admin = member(db, data, "PT")  # as `integra keys init` and `user add` would
    smtp_port = free_port()
    env = {
        "DATABASE_URL": db,
        "INTEGRA_DATA_DIR": str(data),
        "INTEGRA_COUNTRY": "PT",
        "INTEGRA_SMTP_HOST": "127.0.0.1",
        "INTEGRA_SMTP_PORT": str(smtp_port),
        "INTEGRA_SMTP_STARTTLS": "false",
        "INTEGRA_OUTBOX_SWEEP_INTERVAL": "PT1S",
        "INTEGRA_WORKERS": os.environ["INTEGRA_WORKERS"],  # the suite's one API process
    }
    processes = []
    try:
        process, url = start("node", tmp_path, env)
        processes.append(process)
        node = {"url": url, "db": db, "data": data, "public_key": public, "env": env}
        node["admin"] = admin
        orgs = {}
        for label, address in (*CONTACTS.items(), ("C", BYSTANDER)):
            body = factories.organisation(country="PT", region=None, ref=f"pt-{label.lower()}")
            org = ok(api(node, "POST", "/organisations", json=body)).json()
            phone = [{"number": "+351 210 555 010", "type": "landline"}]
            contact = factories.contact(email=address, name=f"Contact {label}", phones=phone)
            ok(api(node, "POST", f"/organisations/{org['id']}/contact-points", json=contact))
            orgs[label] = org
        node["orgs"] = orgs
        node["editor"] = editor(db, orgs["A"]["id"])  # an editor of A's
        hub = hub_process(database, tmp_path, node)
        processes.append(hub.pop("process"))
        yield {"node": node, "hub": hub, "smtp_port": smtp_port, "tmp": tmp_path}
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def editor(db: str, organisation: str) -> dict[str, str]:
    engine = create_async_engine(async_url(db), pooled=False)
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        return asyncio.run(factories.make_user(sessions, "editor", organisations=[organisation]))
    finally:
        asyncio.run(engine.dispose())


def hub_process(database: Database, tmp_path: Any, node: dict[str, Any]) -> dict[str, Any]:
    """The EU hub, enrolling the node (as `integra keys init` and `hub enrol` would), served."""
    db, data = database.fresh_copy(), tmp_path / "hub"
    key, _ = member(db, data, "EU", "hub")
    enrol(db, "PT", node["url"], node["public_key"], "node")
    env = HUB | {"DATABASE_URL": db, "INTEGRA_DATA_DIR": str(data)}
    process, url = start("hub", tmp_path, env | {"INTEGRA_WORKERS": os.environ["INTEGRA_WORKERS"]})
    return {"process": process, "url": url, "db": db, "data": data, "key": key}


@pytest.fixture(scope="module")
def report(federation: dict[str, Any]) -> dict[str, Any]:
    """A public report, submitted: its recommendations addressed to A and B, and B and the
    EU level."""
    node, orgs = federation["node"], federation["node"]["orgs"]
    body = {
        "title": f"Study visit to Lisbon {uuid.uuid4().hex[:6]}",
        "language": "en",
        "organising_authority": {"organisation_id": orgs["A"]["id"]},
        "host_country": "PT",
        "start_date": "2026-03-10",
        "end_date": "2026-03-12",
        "purpose": "Exchange on mentoring released offenders.",
        "delegation": [{"profession": "probation officer", "count": 2}],
        "recommendations": "Two recommendations, to the service and the ministry.",
        "recommendation_items": [
            {"text": ITEM_TO_A_AND_B, "addressees": [orgs["A"]["id"], orgs["B"]["id"]]},
            {"text": ITEM_TO_B_AND_EU, "addressees": [orgs["B"]["id"], "EU"]},
        ],
        "scope": "public",
    }
    created = ok(api(node, "POST", "/study-visits", json=body))
    visit_id = created.json()["id"]
    submitted = ok(
        api(node, "POST", f"/study-visits/{visit_id}/submit", etag=created.headers["etag"])
    )
    return {"id": visit_id, "title": body["title"], "etag": submitted.headers["etag"]}


def test_recommendations_are_mailed_to_their_addressees_and_followed_up_to_the_hub(
    federation: dict[str, Any], report: dict[str, Any]
) -> None:
    node, hub, orgs = federation["node"], federation["hub"], federation["node"]["orgs"]
    visit_id = report["id"]
    published = api(
        node,
        "POST",
        f"/study-visits/{visit_id}/publish",
        etag=report["etag"],
        json=factories.CONFIRMED,
    )
    # The mail server is down: publishing works all the same, and the mails wait, failed.
    assert published.status_code == 200 and not published.json()["hold"], published.text
    report["etag"] = published.headers["etag"]
    follow_up = f"/study-visits/{visit_id}/recommendations"

    def notices(state: str) -> list[dict[str, Any]] | None:
        found = ok(api(node, "GET", follow_up)).json()["notices"]
        return found if found and all(n["state"] == state for n in found) else None

    failed = wait_for("the mails to fail", lambda: notices("failed"))
    assert {n["name"] for n in failed} == {orgs["A"]["name"], orgs["B"]["name"]}
    assert all("Connection" in n["last_error"] or "refused" in n["last_error"] for n in failed)

    mailbox = Mailbox(federation["smtp_port"])  # the server comes up: the sweep sends them
    try:
        wait_for("the mails to be sent", lambda: notices("sent"), seconds=30)
        wait_for("two mails", lambda: len(mailbox.received) >= 2, seconds=10)
    finally:
        mailbox.shutdown()
        mailbox.server_close()
    sent = {tuple(to): message for to, message in mailbox.received}
    assert sorted(sent) == [(CONTACTS["A"],), (CONTACTS["B"],)]  # nobody else
    to_a, to_b = sent[(CONTACTS["A"],)], sent[(CONTACTS["B"],)]
    assert report["title"] in to_a["Subject"] and report["title"] in to_b["Subject"]
    text_a, text_b = to_a.get_content(), to_b.get_content()
    assert ITEM_TO_A_AND_B in text_a and ITEM_TO_B_AND_EU not in text_a
    assert ITEM_TO_A_AND_B in text_b and ITEM_TO_B_AND_EU in text_b

    items = ok(api(node, "GET", follow_up)).json()["recommendations"]
    first = items[0]
    assert first["status"] == "received" and first["text"] == ITEM_TO_A_AND_B
    assert [a["name"] for a in items[1]["addressees"]] == [orgs["B"]["name"], "EU level"]
    status = f"/recommendations/{first['id']}/status"
    # An addressee's editor follows it up; nobody else but the National Point may.
    bystander = {"status": "declined", "note": "Not ours."}
    assert api(node, "POST", f"/recommendations/{items[1]['id']}/status", json=bystander,
               headers=node["editor"]).status_code == 403  # fmt: skip
    for step, who in (("under_consideration", "editor"), ("accepted", "editor")):
        changed = api(
            node, "POST", status, json={"status": step, "note": f"{step}."}, headers=node[who]
        )
        assert changed.status_code == 200 and changed.json()["status"] == step, changed.text
    done = ok(api(node, "POST", status, json={"status": "implemented", "note": "Funded in 2027."}))
    assert [h["status"] for h in done.json()["history"]] == [
        "received",
        "under_consideration",
        "accepted",
        "implemented",
    ]
    assert done.json()["history"][-1]["note"] == "Funded in 2027."
    still_open = ok(
        api(node, "GET", "/recommendations", params={"addressee": orgs["B"]["id"], "open": True})
    )
    assert [r["text"] for r in still_open.json()] == [ITEM_TO_B_AND_EU]
    listing = ("study-visits", "recommendations", "list", "--open")
    listed = cli(node["db"], node["data"], *listing, env=node["env"])
    assert ITEM_TO_B_AND_EU in listed and ITEM_TO_A_AND_B not in listed
    audit = ok(api(node, "GET", "/audit-log", params={"entity_type": "recommendation"})).json()
    assert sum(1 for e in audit["items"] if e["action"] == "follow-up") >= 3

    rid = f"PT:{visit_id}"

    def at_hub() -> dict[str, Any] | None:
        found = httpx.get(f"{hub['url']}/api/v1/eu/records/{rid}")
        if found.status_code != 200:
            return None
        body = found.json()["body"]
        return body if body["recommendation_items"][0]["status"] == "implemented" else None

    body = wait_for("the hub to show it implemented", at_hub)
    shared = body["recommendation_items"]
    assert [h["status"] for h in shared[0]["history"]][-1] == "implemented"
    assert shared[0]["addressees"] == [
        {"name": orgs["A"]["name"], "country": "PT"},
        {"name": orgs["B"]["name"], "country": "PT"},
    ]
    assert shared[1]["addressees"][-1] == {"name": "EU level", "country": "EU"}
    raw = httpx.get(f"{hub['url']}/api/v1/eu/records/{rid}").text
    for detail in (*CONTACTS.values(), "Contact A", "Contact B", "210 555 010", "Funded in 2027"):
        assert detail not in raw  # no contact detail, nor a note, travels
    page = httpx.get(f"{hub['url']}/eu/records/{rid}")
    assert page.status_code == 200 and ITEM_TO_A_AND_B in page.text
    report["etag"] = ok(api(node, "GET", f"/study-visits/{visit_id}")).headers["etag"]


def test_a_withdrawn_report_leaves_the_hub_and_its_mirror_with_a_signed_tombstone(
    federation: dict[str, Any], report: dict[str, Any], database: Database
) -> None:
    node, hub = federation["node"], federation["hub"]
    rid = f"PT:{report['id']}"
    current = ok(api(node, "GET", f"/study-visits/{report['id']}"))
    if current.json()["status"] == "submitted":  # this test run on its own
        publish = f"/study-visits/{report['id']}/publish"
        ok(api(node, "POST", publish, etag=current.headers["etag"], json=factories.CONFIRMED))
    wait_for(
        "the report at the hub",
        lambda: httpx.get(f"{hub['url']}/api/v1/eu/records/{rid}").status_code == 200,
    )
    mirror = new_mirror(database, federation["tmp"], "fr", hub)
    sync(mirror, MIRROR, "mirror")
    assert held_records(mirror["db"])[rid][0] is False
    etag = ok(api(node, "GET", f"/study-visits/{report['id']}")).headers["etag"]
    path = f"/study-visits/{report['id']}/withdraw"
    assert api(node, "POST", path, etag=etag, json={}).status_code == 422  # a reason is needed
    withdrawn = ok(
        api(node, "POST", path, etag=etag, json={"reason": "Superseded by a new visit."})
    )
    assert withdrawn.json()["status"] == "withdrawn"
    assert withdrawn.json()["withdrawn_reason"] == "Superseded by a new visit."

    def withdrawn_at_hub() -> bool:
        found = httpx.get(f"{hub['url']}/api/v1/eu/records/{rid}").json()
        return bool(found["withdrawn"])

    wait_for("the tombstone at the hub", withdrawn_at_hub)
    page = httpx.get(f"{hub['url']}/eu/records/{rid}")
    assert "Its origin has withdrawn this record." in page.text
    assert held_records(hub["db"])[rid][0] is True
    sync(mirror, MIRROR, "mirror")
    assert held_records(mirror["db"])[rid][0] is True
