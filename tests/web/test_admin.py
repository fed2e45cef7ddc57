"""The working pages without a browser: registry editing, the review queue, hub operations,
accounts. Who may open what, CSRF on every form, the API's rules shown beside the fields.
(The same pages in a real browser: `test_admin_browser.py`.)"""

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation import keys
from node.core.settings import Settings
from node.web import accounts, admin, hubops, i18n, labels, registry_contacts, registry_edit
from tests.conftest import Database, free_port
from tests.factories import create_contact, create_organisation, make_user, publish_practice
from tests.federation.conftest import signing_key
from tests.web.test_pages import PASSWORD, csrf_of, sign_in

pytestmark = pytest.mark.anyio

__all__ = ["signing_key"]  # the fixture, for the review queue's node


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    """A node with a feed (its country), so that the personal-data gate holds records."""
    return Settings(database_url=database.url, data_dir=tmp_path, country="GR")


async def form_of(client: httpx.AsyncClient, url: str) -> tuple[str, dict[str, Any]]:
    """A page's first form sent back as drawn: its token, its hidden fields, its values."""
    page = await client.get(url)
    assert page.status_code == 200, page.text[:500]
    fields: dict[str, Any] = {"csrf_token": csrf_of(page.text)}
    form = page.text[page.text.index('<form method="post" class="form"') :]
    form = form[: form.index("</form>")]
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form):
        if (
            f'name="{name}" value="{value}" checked' in form
            or "checkbox" not in form.split(f'name="{name}"')[0][-60:]
        ):
            fields[name] = value
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>([^<]*)</textarea>', form):
        fields[name] = body
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        picked = re.search(r'<option value="([^"]*)" selected', options)
        fields[name] = picked.group(1) if picked else ""
    return page.text, fields


@pytest.fixture
async def registry(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, Any]:
    admin = await make_user(sessions, "admin", email="admin@example.org")
    own = await create_organisation(client, admin, name="Probation Athens", country="GR")
    other = await create_organisation(client, admin, name="Probation Patras", country="GR")
    contact = await create_contact(client, admin, own["id"], name="Eleni Papadopoulou")
    await make_user(sessions, "editor", organisations=[own["id"]], email="editor@example.org")
    reader = await make_user(sessions, "practitioner", email="reader@example.org")
    return {"admin": admin, "own": own, "other": other, "contact": contact, "reader": reader}


async def test_an_editor_edits_an_organisation_and_meets_a_stale_edit(
    client: httpx.AsyncClient, registry: dict[str, Any]
) -> None:
    await sign_in(client, "editor@example.org")
    url = f"/organisations/{registry['own']['id']}/edit"
    _, fields = await form_of(client, url)
    assert fields["name"] == "Probation Athens" and fields["version"] == "1"

    refused = await client.post(url, data=fields | {"name": "", "website": "not a site"})
    assert refused.status_code == 422
    assert 'id="err-name"' in refused.text and "This field cannot be emptied." in refused.text
    assert 'id="err-website"' in refused.text and 'aria-invalid="true"' in refused.text

    # Meanwhile someone else saves through the API.
    api = await client.patch(
        f"/api/v1/organisations/{registry['own']['id']}",
        json={"region": "Thessaly"},
        headers=registry["admin"] | {"If-Match": '"1"'},
    )
    assert api.status_code == 200
    stale = await client.post(url, data=fields | {"region": "Central Greece"})
    assert stale.status_code == 412
    assert (
        'id="stale"' in stale.text and "Central Greece" in stale.text and "Thessaly" in stale.text
    )
    assert 'name="version" value="2"' in stale.text
    again = await client.post(url, data=fields | {"region": "Central Greece", "version": "2"})
    assert again.status_code == 303
    read = await client.get(f"/api/v1/organisations/{registry['own']['id']}")
    assert read.json()["region"] == "Central Greece" and read.json()["version"] == 3


async def test_phones_are_typed_in_the_national_format(
    client: httpx.AsyncClient, registry: dict[str, Any]
) -> None:
    await sign_in(client, "editor@example.org")
    url = f"/contact-points/{registry['contact']['id']}/edit"
    page, fields = await form_of(client, url)
    assert "21 0555 0101" in page  # stored as +302105550101, shown as written in Greece
    wrong = await client.post(url, data=fields | {"phones.0.number": "12"})
    assert wrong.status_code == 422 and 'id="err-phones-0-number"' in wrong.text
    saved = await client.post(url, data=fields | {"phones.1.number": "694 123 4567"})
    assert saved.status_code == 303
    read = await client.get(
        f"/api/v1/contact-points/{registry['contact']['id']}", headers=registry["admin"]
    )
    assert [p["number"] for p in read.json()["phones"]] == ["+302105550101", "+306941234567"]


async def test_an_editor_cannot_reach_another_organisations_forms_nor_admin_pages(
    client: httpx.AsyncClient, registry: dict[str, Any]
) -> None:
    anonymous = await client.get(f"/organisations/{registry['own']['id']}/edit")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/sign-in")
    await sign_in(client, "editor@example.org")
    other = registry["other"]["id"]
    for url in (
        f"/organisations/{other}/edit",
        f"/organisations/{other}/contact-points",
        f"/organisations/{other}/contact-points/new",
        "/registry/organisations/new",
        "/admin",
        "/admin/review",
        "/admin/users",
        "/admin/audit",
        "/admin/federation",
    ):
        refused = await client.get(url)
        assert refused.status_code == 403, url
        assert 'id="not-allowed"' in refused.text
    _, fields = await form_of(client, f"/organisations/{registry['own']['id']}/edit")
    post = await client.post(f"/organisations/{other}/edit", data=fields)
    assert post.status_code == 403
    read = await client.get(f"/api/v1/organisations/{other}")
    assert read.json()["version"] == 1


async def test_the_reminders_list_what_is_due(
    client: httpx.AsyncClient, registry: dict[str, Any]
) -> None:
    await client.post(
        "/api/v1/protocols",
        json={
            "title": "Athens exit protocol",
            "country": "GR",
            "review_date": "2020-01-01",
            "parties": [
                {"organisation_id": registry["own"]["id"]},
                {"organisation_id": registry["other"]["id"]},
            ],
        },
        headers=registry["admin"],
    )
    await sign_in(client, "editor@example.org")
    page = await client.get("/registry/edit")
    assert page.status_code == 200
    assert "Eleni Papadopoulou" in page.text  # never verified
    assert "Athens exit protocol" in page.text
    assert "Probation Athens" in page.text and "Probation Patras" not in page.text


async def test_every_form_refuses_a_request_without_its_token(
    client: httpx.AsyncClient, registry: dict[str, Any]
) -> None:
    """Every POST route of these pages, without a token and with a forged one: 403, nothing
    changed. (Each form's token is checked before its handler runs: `check_csrf`.)"""
    await sign_in(client, "admin@example.org")
    own = registry["own"]["id"]
    params = {"organisation_id": own, "contact_id": registry["contact"]["id"]}
    routes = [
        r
        for module in (registry_edit, registry_contacts, admin, hubops, accounts)
        for r in module.router.routes
        if isinstance(r, APIRoute) and "POST" in (r.methods or set())
    ]
    assert len(routes) >= 14
    _, fields = await form_of(client, f"/organisations/{own}/edit")
    for route in routes:
        url = re.sub(r"{(\w+)}", lambda m: params.get(m.group(1), "1"), route.path)
        for token in (None, "0" * 64):
            sent = {k: v for k, v in fields.items() if k != "csrf_token"} | {"name": "Forged"}
            if token:
                sent["csrf_token"] = token
            refused = await client.post(url, data=sent)
            assert refused.status_code == 403, url
            assert "without the security token" in refused.text
    assert (await client.get(f"/api/v1/organisations/{own}")).json()["version"] == 1


async def test_an_editor_adds_a_protocol_one_of_their_organisations_is_party_to(
    client: httpx.AsyncClient, registry: dict[str, Any], sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The API's rules beside their fields, and the editor's own rule: one of their
    organisations among the parties."""
    own, other = registry["own"]["id"], registry["other"]["id"]
    await sign_in(client, "reader@example.org")
    assert (await client.get("/registry/protocols/new")).status_code == 403
    await sign_in(client, "editor@example.org")
    assert 'id="new-protocol"' in (await client.get("/registry/edit")).text
    page = await client.get("/registry/protocols/new")
    assert page.status_code == 200
    token = {"csrf_token": csrf_of(page.text)}

    empty = await client.post("/registry/protocols/new", data=token)
    assert empty.status_code == 422
    assert 'id="err-title"' in empty.text and 'id="err-parties"' in empty.text
    assert "Name at least two parties." in empty.text
    sent = token | {"title": "Athens exit protocol", "country": "gr"}
    theirs = sent | {"parties.0.organisation_id": other, "parties.1.organisation_id": other}
    refused = await client.post("/registry/protocols/new", data=theirs)
    assert refused.status_code == 422 and 'id="err-parties"' in refused.text
    assert "Name at least one of your organisations among the parties." in refused.text
    twice = sent | {"parties.0.organisation_id": own, "parties.2.organisation_id": own}
    refused = await client.post("/registry/protocols/new", data=twice)
    assert 'id="err-parties-2-organisation_id"' in refused.text  # at the row the user filled
    assert "This organisation is listed twice." in refused.text
    both = sent | {
        "parties.0.organisation_id": own,
        "parties.1.organisation_id": other,
        "parties.1.role": "lead",
        "signed_date": "2026-01-10",
    }
    refused = await client.post(
        "/registry/protocols/new", data=both | {"review_date": "2025-01-01"}
    )
    assert refused.status_code == 422 and 'id="err-review_date"' in refused.text
    assert f'<option value="{other}" selected>' in refused.text  # nothing typed is lost

    created = await client.post(
        "/registry/protocols/new", data=both | {"review_date": "2027-01-10"}
    )
    assert created.status_code == 303, created.text[:2000]
    assert created.headers["location"].endswith("/edit?saved=1")
    protocol_id = created.headers["location"].split("/")[2]
    read = (await client.get(f"/api/v1/protocols/{protocol_id}")).json()
    assert read["title"] == "Athens exit protocol" and read["country"] == "GR"
    assert {(p["organisation_id"], p["role"]) for p in read["parties"]} == {
        (own, "party"),
        (other, "lead"),
    }
    assert (await client.get(created.headers["location"])).status_code == 200  # theirs to edit


async def test_every_admin_page_shows_the_review_queues_size(
    client: httpx.AsyncClient, registry: dict[str, Any], signing_key: Any
) -> None:
    await publish_practice(
        client,
        registry["admin"],
        title="Leaky mentoring",
        description="Ask Eleni Papadopoulou for the training materials.",
    )
    await sign_in(client, "admin@example.org")
    users = await client.get("/admin/users")
    user_page = re.search(r'href="(/admin/users/[0-9a-f-]+)"', users.text).group(1)  # type: ignore[union-attr]
    for url in (
        "/admin",
        "/admin/review",
        "/admin/users",
        user_page,
        "/admin/audit",
        "/admin/federation",
        "/registry/edit",
        "/registry/protocols/new",
        "/my-work",
        "/",
    ):
        shown = await client.get(url)
        assert shown.status_code == 200, url
        assert '<span class="queue-size" id="queue-size">1</span>' in shown.text, url
        if url.startswith("/admin"):  # and beside the administration's own menu
            assert 'id="subnav-queue-size">1</span>' in shown.text, url


async def test_enrolment_refuses_an_address_where_no_node_answers(
    client: httpx.AsyncClient, registry: dict[str, Any], signing_key: Any
) -> None:
    await sign_in(client, "admin@example.org")
    page = await client.get("/admin/federation")
    assert page.status_code == 200
    assert 'id="feed-title"' in page.text and 'id="feed-state"' in page.text
    assert keys.fingerprint(signing_key.key_id) in page.text  # to read out to the hub
    assert 'id="enrol"' not in page.text  # a node enrols no one
    app = client._transport.app  # type: ignore[attr-defined]
    app.state.settings = app.state.settings.model_copy(update={"role": "hub"})
    hub = await client.get("/admin/federation")
    assert 'id="no-peers"' in hub.text and 'id="enrol"' in hub.text
    sent = {
        "csrf_token": csrf_of(hub.text),
        "country": "pt",
        "url": f"http://127.0.0.1:{free_port()}",
        "fingerprint": "abcd efgh",
    }
    refused = await client.post("/admin/federation/enrol", data=sent)
    assert refused.status_code == 422 and 'id="err-url"' in refused.text
    assert "No answer from a node at this address" in refused.text
    plain = await client.post(
        "/admin/federation/enrol", data=sent | {"url": "http://node.example.org", "country": "P"}
    )
    assert 'id="err-url"' in plain.text and 'id="err-country"' in plain.text
    assert (await client.get("/admin/federation")).text.count('id="no-peers"') == 1


async def test_an_admin_releases_a_held_record_and_finds_it_in_the_audit_log(
    client: httpx.AsyncClient, registry: dict[str, Any], signing_key: Any
) -> None:
    leaky = await publish_practice(
        client,
        registry["admin"],
        title="Leaky mentoring",
        description="Ask Eleni Papadopoulou for the training materials.",
    )
    await sign_in(client, "admin@example.org")
    queue = await client.get("/admin/review")
    assert queue.status_code == 200
    assert '<span class="queue-size" id="queue-size">1</span>' in queue.text
    assert "Leaky mentoring" in queue.text and "a name of a person this node knows" in queue.text
    assert "<mark>Eleni Papadopoulou</mark>" in queue.text  # the words, in their context
    assert f'href="/practices/{leaky["id"]}/edit"' in queue.text  # fix the text there
    hold_id = re.search(r'action="/admin/review/(\d+)/release"', queue.text).group(1)  # type: ignore[union-attr]
    token = csrf_of(queue.text)

    short = await client.post(
        f"/admin/review/{hold_id}/release", data={"csrf_token": token, "justification": "ok"}
    )
    assert short.status_code == 422 and 'aria-invalid="true"' in short.text
    assert "At least 10 characters." in short.text
    why = "A fictitious name in a training scenario, not a person."
    released = await client.post(
        f"/admin/review/{hold_id}/release", data={"csrf_token": token, "justification": why}
    )
    assert released.status_code == 303
    after = await client.get(released.headers["location"])
    assert 'id="released"' in after.text and 'id="queue-empty"' in after.text
    assert '<span class="queue-size" id="queue-size">0</span>' in after.text
    log = await client.get("/admin/audit", params={"action": "release"})
    assert why in log.text and "admin@example.org" in log.text
    assert "released from the review queue" in log.text and "<code>release</code>" not in log.text
    french = await client.get(
        "/admin/audit", params={"action": "release"}, headers={"Accept-Language": "fr"}
    )
    assert "libéré de la file de revue" in french.text  # the action, as a reader says it
    again = await client.post(
        f"/admin/review/{hold_id}/release", data={"csrf_token": token, "justification": why}
    )
    assert again.status_code == 409
    refused = await client.post(f"/admin/review/{hold_id}/release", data={"justification": why})
    assert refused.status_code == 403


class Mailbox:
    """A tiny SMTP server on a free port, in the test's event loop: what it was sent."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 test ESMTP\r\n")
        while line := await reader.readline():
            command = line.decode().strip().upper()
            if command.startswith("DATA"):
                writer.write(b"354 go on\r\n")
                await writer.drain()
                self.messages.append((await reader.readuntil(b"\r\n.\r\n")).decode())
                writer.write(b"250 kept\r\n")
            elif command.startswith("QUIT"):
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()


async def test_a_user_is_created_assigned_and_resets_a_forgotten_password_by_mail(
    client: httpx.AsyncClient, registry: dict[str, Any]
) -> None:
    mailbox = Mailbox()
    port = await mailbox.start()
    app = client._transport.app  # type: ignore[attr-defined]
    app.state.settings = app.state.settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False}
    )
    await sign_in(client, "admin@example.org")
    users = await client.get("/admin/users")
    token = csrf_of(users.text)
    wrong = await client.post(
        "/admin/users",
        data={"csrf_token": token, "email": "not-an-address", "role": "editor"},
    )
    assert wrong.status_code == 422 and 'id="err-email"' in wrong.text
    created = await client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "email": "New.Editor@Example.org",
            "name": "New editor",
            "role": "editor",
            "organisations": [registry["own"]["id"]],
        },
    )
    assert created.status_code == 303
    user_page = await client.get(created.headers["location"])
    assert "new.editor@example.org" in user_page.text
    assert re.search(rf'<option value="{registry["own"]["id"]}" selected>', user_page.text)
    issued = await client.post(
        created.headers["location"].split("?")[0] + "/reset-link",
        data={"csrf_token": csrf_of(user_page.text)},
    )
    assert issued.status_code == 200 and 'id="mailed"' in issued.text
    link = re.search(r'<p class="secret" id="link">([^<]+)</p>', issued.text).group(1)  # type: ignore[union-attr]
    assert link in mailbox.messages[0] and "new.editor@example.org" in mailbox.messages[0]
    path = link.removeprefix("http://node.test")

    client.cookies.clear()
    form = await client.get(path)
    assert form.status_code == 200 and "new.editor@example.org" in form.text
    weak = await client.post(
        path, data={"csrf_token": csrf_of(form.text), "new": "short", "again": "short"}
    )
    assert weak.status_code == 422 and 'id="err-new"' in weak.text
    new = "a walk along the Thermaic gulf"
    done = await client.post(
        path, data={"csrf_token": csrf_of(form.text), "new": new, "again": new}
    )
    assert done.status_code == 200 and 'id="reset-done"' in done.text
    assert (await client.get(path)).status_code == 410  # once only
    signed = await client.post(
        "/sign-in",
        data={"csrf_token": csrf_of(form.text), "email": "new.editor@example.org", "password": new},
    )
    assert signed.status_code == 303
    mine = await client.get("/registry/edit")
    assert "Probation Athens" in mine.text and "Probation Patras" not in mine.text
    mailbox.server.close()  # type: ignore[union-attr]


async def test_users_change_their_password_and_revoke_their_own_tokens(
    client: httpx.AsyncClient, registry: dict[str, Any]
) -> None:
    await sign_in(client, "reader@example.org")
    page = await client.get("/account")
    assert page.status_code == 200 and "(this browser)" in page.text
    token = csrf_of(page.text)
    wrong = await client.post(
        "/account/password",
        data={"csrf_token": token, "current": "nope", "new": "x" * 20, "again": "x" * 20},
    )
    assert wrong.status_code == 422 and "The current password is wrong." in wrong.text
    new = "a longer phrase for the practitioner"
    changed = await client.post(
        "/account/password",
        data={"csrf_token": token, "current": PASSWORD, "new": new, "again": new},
    )
    assert changed.status_code == 303
    items = re.findall(r'<li class="hit">(.*?)</li>', page.text, re.S)
    assert len(items) == 2  # the test's API token and this browser's session
    [api] = [i for i in items if "(this browser)" not in i]
    action = re.search(r'action="(/account/tokens/[^"]+/revoke)"', api).group(1)  # type: ignore[union-attr]
    assert (await client.get("/api/v1/users/me", headers=registry["reader"])).status_code == 200
    revoked = await client.post(action, data={"csrf_token": token})
    assert revoked.status_code == 303
    assert (await client.get("/api/v1/users/me", headers=registry["reader"])).status_code == 401
    assert (await client.get("/account")).status_code == 200  # this browser still signed in
    someone_elses = await client.post(action, data={"csrf_token": token})
    assert someone_elses.status_code == 404
    log = await client.get(
        "/api/v1/audit-log", params={"entity_type": "user"}, headers=registry["admin"]
    )
    actions = [e["action"] for e in log.json()["items"]]
    assert "password_change" in actions and "token_revoke" in actions


async def test_failed_web_sign_ins_are_audited_and_throttled(
    client: httpx.AsyncClient, registry: dict[str, Any]
) -> None:
    app = client._transport.app  # type: ignore[attr-defined]
    app.state.settings = app.state.settings.model_copy(update={"sign_in_account_failures": 3})
    form = await client.get("/sign-in")
    sent = {"csrf_token": csrf_of(form.text), "email": "reader@example.org", "password": "no"}
    for _ in range(3):
        assert (await client.post("/sign-in", data=sent)).status_code == 401
    throttled = await client.post("/sign-in", data=sent | {"password": PASSWORD})
    assert throttled.status_code == 429 and 'id="sign-in-throttled"' in throttled.text
    assert "integra_session" not in throttled.headers.get("set-cookie", "")
    log = await client.get(
        "/api/v1/audit-log", params={"action": "login_failed"}, headers=registry["admin"]
    )
    assert [e["detail"]["via"] for e in log.json()["items"]] == ["web"] * 3


@pytest.mark.parametrize(
    ("said", "french"),
    [
        ("ConnectError: All connection attempts failed", "Le nœud est injoignable à son adresse."),
        ("sequence 7 where 5 was due", "Une entrée manque ou n'est pas à sa place dans le flux."),
        ("personal data: an e-mail address in description", "Cela ressemble à des données"),
        ("something nobody foresaw", "Refusé (voir le détail technique)."),
    ],
)
def test_the_federations_refusals_are_told_in_the_readers_language(said: str, french: str) -> None:
    assert i18n.gettext_for("fr")(labels.refusal(said)).startswith(french)
