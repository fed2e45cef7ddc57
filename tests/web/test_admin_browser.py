"""The working pages in a real browser: registry editing with a stale edit, the review queue and
the audit log, a password reset through its link, and the hub enrolling a node, receiving a
practice published on it in the browser, and showing it failing once it stops. One Greek node
serves the module; the hub's journey stops it, so that journey stays last.

Run alone: .venv/bin/pytest tests/web/test_admin_browser.py -m browser -n 0 (screenshots as in
test_browser.py, under $INTEGRA_SCREENSHOTS or tests/web/screenshots/)."""

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.web.conftest import (
    DESKTOP,
    add_users,
    errors_of,
    look,
    migrated,
    serve,
    signing_key,
    stop,
    wait_until,
)

pytestmark = pytest.mark.browser
ADMIN, EDITOR = "np-admin@example.org", "np-editor@example.org"
BROWSER_PASSWORD = "a long enough password for tests"
GREEK_ORG, OTHER_ORG = "gr-epanodos", "gr-ekam"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A Greek node with its feed and the sample data, an administrator and an editor of one
    organisation, and a practice the personal-data gate holds."""
    root = tmp_path_factory.mktemp("admin-node")
    db = migrated(root / "gr.db")
    env = {"INTEGRA_COUNTRY": "GR", "INTEGRA_SECRET_KEY": "x" * 40}
    fingerprint, _ = signing_key(db, root / "gr", "GR")
    add_users(db, [(ADMIN, "admin", [])], BROWSER_PASSWORD)
    process, url = serve(
        "gr", root, env | {"DATABASE_URL": db, "INTEGRA_DATA_DIR": str(root / "gr")},
        "--sample-data",
    )  # fmt: skip
    try:  # the editor once the sample's organisations are in
        add_users(db, [(EDITOR, "editor", [GREEK_ORG])], BROWSER_PASSWORD)
        login = {"email": ADMIN, "password": BROWSER_PASSWORD}
        token = httpx.post(f"{url}/api/v1/auth/token", json=login).json()["token"]
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
        body = {
            "kind": "practice",
            "title": "Mentoring with a leaky contact line",
            "language": "en",
            "summary": "Mentors accompany released prisoners.",
            "description": "Write to maria.k@probation.example.gr for the materials.",
            "country": "GR",
            "licence": "CC-BY-4.0",
        }
        created = api.post("/api/v1/practices", json=body)
        assert created.status_code == 201, created.text
        published = api.post(
            f"/api/v1/practices/{created.json()['id']}/publish",
            json={"confirm_no_person": True},
            headers={"If-Match": created.headers["etag"]},
        )
        assert published.status_code == 200, published.text
        orgs = {o["ref"]: o["id"] for o in _organisations(api)}
        yield {
            "url": url,
            "api": api,
            "own": orgs[GREEK_ORG],
            "other": orgs[OTHER_ORG],
            "fingerprint": fingerprint,
            "process": process,  # the hub's journey stops it: that journey comes last
        }
        api.close()
    finally:
        stop(process)


def _organisations(api: httpx.Client) -> list[dict[str, Any]]:
    listed = api.get("/api/v1/organisations", params={"country": "GR", "limit": 200})
    return list(listed.json()["items"])


def _signed_in(browser: Any, url: str, email: str, locale: str = "en-GB") -> Any:
    context = browser.new_context(base_url=url, locale=locale, viewport=DESKTOP)
    page = context.new_page()
    page.errors = errors_of(page)
    page.goto("/sign-in")
    page.locator("#email").fill(email)
    page.locator("#password").fill(BROWSER_PASSWORD)
    page.locator("form.stacked button").click()
    expect(page.locator("header .who")).to_have_text(email)
    return page


def test_an_editor_meets_a_stale_edit_made_in_another_browser(
    browser: Any, node: dict[str, Any]
) -> None:
    editor = _signed_in(browser, node["url"], EDITOR, locale="fr-FR")
    editor.locator('header a[href="/registry/edit"]').click()
    expect(editor.locator("h1")).to_have_text("Mon registre")
    expect(editor.locator("#editable .hit")).to_have_count(1)
    look(editor, "registry-edit")
    editor.locator(f'a[href="/organisations/{node["own"]}/edit"]').click()
    expect(editor.locator("#f-name")).to_be_visible()
    look(editor, "organisation-edit")

    admin = _signed_in(browser, node["url"], ADMIN)  # meanwhile, in another browser
    admin.goto(f"/organisations/{node['own']}/edit")
    admin.locator("#f-region").fill("Attica and the islands")
    admin.locator("#save").click()
    expect(admin.locator("#saved")).to_be_visible()

    editor.locator("#f-description").fill("Aftercare for released prisoners and their families.")
    editor.locator("#f-website").fill("not a web address")
    editor.locator("#save").click()
    expect(editor.locator("#err-f-website, #err-website")).to_have_text(
        "Ce n'est pas une adresse web (https://…)."
    )
    look(editor, "organisation-edit-refused")
    editor.locator("#f-website").fill("")
    editor.locator("#save").click()
    expect(editor.locator("#stale")).to_be_visible()  # the admin's save came first
    expect(editor.locator("#stale table")).to_contain_text("Attica and the islands")
    expect(editor.locator("#stale table")).to_contain_text("Aftercare for released prisoners")
    look(editor, "organisation-stale")
    editor.locator("#save").click()  # apply again, over the new version
    expect(editor.locator("#saved")).to_be_visible()
    read = node["api"].get(f"/api/v1/organisations/{node['own']}").json()
    assert read["description"].startswith("Aftercare") and read["region"] is None

    editor.locator(f'a[href="/organisations/{node["own"]}/contact-points"]').first.click()
    look(editor, "contact-points")
    editor.locator("#new-contact").click()
    editor.locator("#f-title").fill("Duty officer")
    editor.locator("#f-phones-0-number").fill("210 555 0199")
    editor.locator("#save").click()
    expect(editor.locator("#saved")).to_be_visible()
    expect(editor.locator("#f-phones-0-number")).to_have_value("21 0555 0199")
    look(editor, "contact-point-edit")

    editor.locator('header a[href="/registry/edit"]').click()  # a protocol of theirs
    editor.locator("#new-protocol").click()
    editor.locator("#f-title").fill("Protocole de sortie d'Athènes")
    editor.locator("#f-parties-0-organisation_id").select_option(node["other"])
    editor.locator("#save").click()  # the editor's organisation is not among the parties
    expect(editor.locator("#err-parties")).to_be_visible()
    expect(editor.locator("#err-title")).to_have_count(0)
    look(editor, "protocol-new-refused")
    editor.locator("#f-parties-1-organisation_id").select_option(node["own"])
    editor.locator("#f-parties-1-role").select_option("lead")
    editor.locator("#save").click()
    expect(editor.locator("#saved")).to_be_visible()
    expect(editor.locator("#f-title")).to_have_value("Protocole de sortie d'Athènes")
    look(editor, "protocol-new-saved")

    for url in (f"/organisations/{node['other']}/edit", "/admin", "/admin/users"):
        editor.goto(url)
        expect(editor.locator("#not-allowed")).to_be_visible()
    look(editor, "not-allowed")
    assert editor.errors == [] and admin.errors == []
    editor.context.close()
    admin.context.close()


def test_in_a_browser_an_admin_releases_a_held_record_and_finds_it_in_the_audit_log(
    browser: Any, node: dict[str, Any]
) -> None:
    admin = _signed_in(browser, node["url"], ADMIN, locale="el-GR")
    admin.locator('header a[href="/admin"]').click()
    expect(admin.locator("#queue-size")).to_have_text("1")
    look(admin, "admin")
    admin.locator("#queue-link").click()
    held = admin.locator(".held-item").first
    expect(held.locator("mark")).to_have_text("maria.k@probation.example.gr")
    expect(held).to_contain_text("μια διεύθυνση e-mail")
    look(admin, "review-queue")
    held.locator("textarea").fill("ok")
    held.locator("button").click()
    expect(admin.locator(".held-item .field-error")).to_contain_text("Τουλάχιστον 10")
    look(admin, "review-queue-refused")
    why = "A functional mailbox of the probation service, not a person's."
    admin.locator(".held-item textarea").first.fill(why)
    admin.locator(".held-item button").first.click()
    expect(admin.locator("#released")).to_be_visible()
    expect(admin.locator("#queue-size")).to_have_text("0")
    admin.locator("#released a").click()
    expect(admin.locator("#audit")).to_contain_text(why)
    expect(admin.locator("#audit")).to_contain_text(ADMIN)
    expect(admin.locator("#audit")).to_contain_text("αποδεσμεύτηκε από την ουρά ελέγχου")
    look(admin, "audit-log")
    admin.locator('.subnav a[href="/admin/federation"]').click()
    expect(admin.locator("#feed-state")).to_be_visible()
    look(admin, "node-feed")

    admin.locator('header a[href="/registry/edit"]').click()  # the administrator's registry
    look(admin, "registry-edit-admin")
    admin.locator("#new-organisation").click()
    admin.locator("#save").click()  # empty: every rule of the API said beside its field
    expect(admin.locator("#problems")).to_be_visible()
    expect(admin.locator("#err-name")).to_be_visible()
    look(admin, "organisation-new-refused")
    protocols = node["api"].get("/api/v1/protocols", params={"country": "GR"}).json()["items"]
    admin.goto(f"/protocols/{protocols[0]['id']}/edit")
    admin.locator("#f-signed_date").fill("2020-01-01")
    admin.locator("#f-review_date").fill("1999-01-01")  # before the signing: refused
    admin.locator("#save").click()
    expect(admin.locator("#err-review_date")).to_be_visible()
    look(admin, "protocol-edit-refused")
    assert admin.errors == []
    admin.context.close()


def test_a_user_resets_a_forgotten_password_through_the_link(
    browser: Any, node: dict[str, Any]
) -> None:
    admin = _signed_in(browser, node["url"], ADMIN, locale="pt-PT")
    admin.goto("/admin/users")
    look(admin, "users")
    admin.locator("#f-email").fill("forgetful@example.org")
    admin.locator("#f-role").select_option("practitioner")
    admin.locator("#add-user").click()
    admin.locator("#issue-link").click()
    link = admin.locator("#link").inner_text()
    look(admin, "user")
    admin.context.close()

    context = browser.new_context(base_url=node["url"], locale="bg-BG", viewport=DESKTOP)
    user = context.new_page()
    user.goto(link)
    look(user, "reset")
    new = "the harbour lights of Varna"
    user.locator("#f-new").fill(new)
    user.locator("#f-again").fill(new)
    user.locator("#set-password").click()
    expect(user.locator("#reset-done")).to_be_visible()
    user.goto(link)
    expect(user.locator("#reset-invalid")).to_be_visible()  # once only
    user.goto("/sign-in")
    user.locator("#email").fill("forgetful@example.org")
    user.locator("#password").fill(new)
    user.locator("form.stacked button").click()
    user.locator('header a[href="/account"]').click()
    expect(user.locator("#token-list .hit")).to_have_count(1)
    look(user, "account")
    context.close()


def test_the_hub_enrols_a_node_gets_a_practice_published_on_it_and_shows_it_failing_once_stopped(
    browser: Any, node: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The hub enrols the Greek node by its key's fingerprint; the node's National Point
    publishes a practice in the browser, and the hub's search page finds it after the hub's
    round; then the node stops and the hub's status page says so. This journey ends the
    node, so it is the module's last."""
    root = tmp_path_factory.mktemp("admin-hub")
    db = migrated(root / "hub.db")
    env = {"INTEGRA_COUNTRY": "EU", "INTEGRA_ROLE": "hub", "INTEGRA_HUB_SYNC_INTERVAL": "PT1S"}
    signing_key(db, root / "hub", "EU", "hub")
    add_users(db, [(ADMIN, "admin", [])], BROWSER_PASSWORD)
    hub, hub_url = serve(
        "hub", root, env | {"DATABASE_URL": db, "INTEGRA_DATA_DIR": str(root / "hub")}
    )
    try:
        operator = _signed_in(browser, hub_url, ADMIN)
        operator.goto("/admin/federation")
        expect(operator.locator("#no-peers")).to_be_visible()
        operator.locator("#f-country").fill("GR")
        operator.locator("#f-url").fill(node["url"])
        operator.locator("#f-fingerprint").fill("0000 " + node["fingerprint"][5:])
        operator.locator("#enrol").click()
        expect(operator.locator("#err-fingerprint")).to_be_visible()  # a key swapped on the way
        look(operator, "hub-enrol-refused")
        operator.locator("#f-fingerprint").fill(node["fingerprint"])
        operator.locator("#enrol").click()
        expect(operator.locator("#done")).to_be_visible()
        status = operator.locator("#peer-GR .peer-status")
        _reload_until(operator, status, "in step")
        look(operator, "hub-nodes")

        publisher = _signed_in(browser, node["url"], ADMIN, locale="el-GR")  # on the node
        publisher.goto("/practices/new")
        publisher.locator("#f-kind").select_option("practice")
        publisher.locator("#f-title").fill(PUBLISHED)
        publisher.locator("#f-summary").fill("Released young people keep bees with mentors.")
        publisher.locator("#f-description").fill("Weekly sessions at a community apiary.")
        publisher.locator("#save").click()
        publisher.wait_for_url(re.compile(r"/practices/[0-9a-f-]+/edit\?done=created"))
        publisher.locator("#a-confirm").check()  # the publisher's word: no person named
        publisher.locator("#publish-form button").click()
        publisher.wait_for_url(re.compile(r"done=published"))
        expect(publisher.locator("#status")).to_contain_text("Δημοσιε")
        expect(publisher.locator("#hold")).to_have_count(0)  # nothing kept from the federation

        found = {"q": "beekeeping"}  # the hub's next round brings it; its search finds it
        wait_until(
            lambda: httpx.get(f"{hub_url}/api/v1/eu/search", params=found).json()["total"],
            "the published practice in the hub's pool",
        )
        operator.goto("/?q=beekeeping")
        expect(operator.locator(".hit h3")).to_have_text([PUBLISHED])
        expect(operator.locator(".hit .meta").first).to_contain_text("Greece")
        look(operator, "hub-search-published")

        operator.goto("/admin/federation")
        node["process"].terminate()  # the node stops meanwhile
        node["process"].wait(timeout=20)
        _reload_until(operator, status, "failing")
        expect(operator.locator("#peer-GR")).to_contain_text(
            "The node could not be reached at its address."  # the error, as a reader says it
        )
        expect(operator.locator("#peer-GR")).to_contain_text(node["url"].removeprefix("http://"))
        look(operator, "hub-nodes-failing")
        operator.locator('#peer-GR a[href="/admin/federation/nodes/GR"]').click()
        expect(operator.locator("#node-status")).to_have_text("failing")
        look(operator, "hub-node")
        operator.locator('input[name="confirm"]').first.check()
        operator.locator("button.danger").first.click()
        expect(operator.locator("#done")).to_contain_text("Revoked")
        assert operator.errors == [] and publisher.errors == []
        operator.context.close()
        publisher.context.close()
    finally:
        stop(hub)


PUBLISHED = "Beekeeping with mentors after release"


def _reload_until(page: Any, locator: Any, text: str, seconds: float = 60) -> None:
    """Reload the page until the locator says `text` (the hub syncs every second)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if locator.count() and locator.inner_text().strip() == text:
            return
        page.wait_for_timeout(500)
        page.reload()
    raise AssertionError(f"never {text!r}: {locator.inner_text() if locator.count() else None}")
