"""Practices and study-visit reports written, reviewed and published in the browser.

The journeys run in Debian's chromium on a real node that federates (its personal-data gate
is on); every page is checked with axe and saved at desktop width and at 320 px, as in
test_browser.py:

    .venv/bin/pytest tests/web/test_editing.py -m browser -n 0

The permission and CSRF rules are checked without a browser, on both databases, in
test_editing_rules.py (an async test beside Playwright's sync API in one module would share
its event loop).
"""

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web.conftest import DESKTOP, add_users, look, migrated, serve, signing_key, stop

PASSWORD = "a long enough password"
USERS = {  # email: (role, organisation refs of an editor)
    "editor@example.net": ("editor", ["gr-epanodos"]),
    "other-editor@example.net": ("editor", ["gr-arsis"]),
    "admin@example.net": ("admin", []),
    "professional@example.net": ("practitioner", []),
}
E_MAIL = "giorgos.papadopoulos@mail.example.gr"
# Chromium is looked for by the `browser` fixture (tests/web/conftest.py); kept as a marker.
needs_chromium = pytest.mark.browser


# --- the browser journeys -------------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Greek node that federates (`keys init`, INTEGRA_COUNTRY=GR: the gate runs on every
    publish), with its sample data and one user of each kind, in its own process."""
    data_dir = tmp_path_factory.mktemp("editing")
    db = migrated(data_dir / "node.db")
    env = {"INTEGRA_COUNTRY": "GR"}
    signing_key(db, data_dir, "GR")
    env |= {"DATABASE_URL": db, "INTEGRA_DATA_DIR": str(data_dir)}
    process, url = serve("serve", data_dir, env, "--sample-data")
    try:  # the sample's organisations exist now: the accounts that name them
        users = [(email, role, orgs) for email, (role, orgs) in USERS.items()]
        add_users(db, users, PASSWORD)
        yield url
    finally:
        stop(process)


class People:
    """A browser context per user, each signed in once; every page's script errors kept."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.browser, self.url = browser, url
        self.contexts: list[Any] = []
        self.errors: list[str] = []

    def signed_in(self, email: str, locale: str = "en-GB") -> Page:
        context = self.browser.new_context(base_url=self.url, locale=locale, viewport=DESKTOP)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.goto("/sign-in?next=/my-work")
        page.locator("#email").fill(email)
        page.locator("#password").fill(PASSWORD)
        page.locator("form.stacked button").click()
        page.wait_for_url(re.compile(r"/my-work$"))
        return page


@pytest.fixture
def people(browser: Browser, node: str) -> Iterator[People]:
    crowd = People(browser, node)
    yield crowd
    for context in crowd.contexts:
        context.close()
    # A refused form answers 403 or 422 with its page: the browser logs it, it is no error.
    refused = "Failed to load resource: the server responded with a status of 4"
    assert [e for e in crowd.errors if not e.startswith(refused)] == []


@pytest.mark.browser
def test_an_editor_submits_a_practice_the_gate_holds_and_the_national_point_decides(
    people: People,
) -> None:
    editor = people.signed_in("editor@example.net", locale="fr-FR")
    expect(editor.locator("html")).to_have_attribute("lang", "fr")
    look(editor, "my-work-editor")
    editor.locator("#new-practice").click()
    editor.wait_for_url(re.compile(r"/practices/new$"))
    look(editor, "practice-new")
    editor.locator("#save").click()  # nothing filled: the refusals beside their fields
    expect(editor.locator("#problems")).to_be_visible()
    expect(editor.locator("#f-title")).to_have_attribute("aria-invalid", "true")
    look(editor, "practice-new-refused")

    editor.locator("#f-kind").select_option("practice")
    editor.locator("#f-title").fill("Mentorat après la libération")
    editor.locator("#f-summary").fill("Des mentors rencontrent chaque semaine les libérés.")
    editor.locator("#f-responsible").select_option(index=1)  # the editor's organisation
    editor.locator("#f-description").fill(f"Pour une place, écrire à {E_MAIL} avant lundi.")
    editor.locator("#f-intervention_types-mentoring").check()
    editor.locator("#save").click()
    editor.wait_for_url(re.compile(r"/practices/[0-9a-f-]+/edit\?done=created"))
    expect(editor.locator("#done")).to_be_visible()
    edit_path = editor.url.removeprefix(people.url).split("?")[0]
    look(editor, "practice-draft")

    editor.locator("#submit-form button").click()  # the gate says at once what it holds
    expect(editor.locator("#hold")).to_be_visible()
    expect(editor.locator("#hold .words")).to_have_text(E_MAIL)
    expect(editor.locator("#hold .context")).to_contain_text("écrire à")
    look(editor, "practice-submitted-held")

    other = people.signed_in("other-editor@example.net")  # another organisation's editor
    answer = other.goto(edit_path)
    assert answer is not None and answer.status == 403
    expect(other.locator("#not-allowed")).to_be_visible()
    assert other.locator("#practice-form").count() == 0

    admin = people.signed_in("admin@example.net", locale="el-GR")
    admin.goto(edit_path)
    admin.locator("#publish-form button").click()  # without the publisher's confirmation
    expect(admin.locator("#err-confirm_no_person")).to_be_visible()
    look(admin, "practice-publish-unconfirmed")
    admin.locator("#a-confirm").check()
    admin.locator("#publish-form button").click()
    expect(admin.locator("#hold .words")).to_have_text(E_MAIL)  # held from the federation
    expect(admin.locator("#status")).to_contain_text("Δημοσιε")
    look(admin, "practice-published-held")

    admin.locator("#a-scope").select_option("national")
    admin.locator("#scope-form button").click()
    admin.wait_for_url(re.compile(r"done=scope"))
    expect(admin.locator("#a-scope")).to_have_value("national")

    admin.locator("#a-reason").fill("Names a person in its contact details.")
    admin.locator("#a-personal").check()  # the personal-data reason: the text is erased
    admin.locator("#withdraw-form button").click()
    admin.wait_for_url(re.compile(r"done=withdrawn"))
    admin.goto(edit_path.removesuffix("/edit"))
    expect(admin.locator(".record")).to_contain_text("Names a person in its contact details.")
    expect(admin.locator(".record")).not_to_contain_text(E_MAIL)
    look(admin, "practice-withdrawn")


@pytest.mark.browser
@needs_chromium
def test_a_professional_writes_a_report_in_steps_and_the_national_point_reviews_it(
    people: People,
) -> None:
    author = people.signed_in("professional@example.net", locale="pt-PT")
    author.locator("#new-report").click()
    author.wait_for_url(re.compile(r"/study-visits/new$"))
    author.locator("#f-title").fill("Visita de estudo ao serviço de reinserção de Lisboa")
    author.locator("#f-organising_authority").fill("EPANODOS")
    author.locator("#f-host_country").fill("pt")
    author.locator("#f-start_date").fill("2026-10-01")
    author.locator("#f-end_date").fill("2026-09-30")  # before the first day: refused
    author.locator("#f-purpose").fill("Conhecer o trabalho dos mentores.")
    author.locator("#save-next").click()
    expect(author.locator("#problems")).to_be_visible()
    look(author, "visit-step-1-refused")
    author.locator("#f-end_date").fill("2026-10-03")
    author.locator("#save-next").click()
    author.wait_for_url(re.compile(r"/edit/2$"))
    report = author.url.removeprefix(people.url).split("/edit/")[0]
    look(author, "visit-step-2")

    author.locator("#f-host_organisations").fill("DGRSP Lisboa\nEquipa de reinserção")
    author.locator("#f-programme").fill("Dia 1: prisão. Dia 2: reinserção.")
    author.locator("#save-next").click()
    author.wait_for_url(re.compile(r"/edit/3\?saved=1"))
    author.locator("#f-delegation-0-profession").fill("técnico de reinserção")
    author.locator("#f-delegation-0-count").fill("3")
    author.locator("#f-delegation-1-profession").fill("assistente social")
    author.locator("#f-delegation-1-count").fill("2")
    author.locator("#save").click()
    author.wait_for_url(re.compile(r"/edit/3\?saved=1"))
    author.reload()  # the draft is saved: a reload shows it as it was
    expect(author.locator("#f-delegation-1-profession")).to_have_value("assistente social")
    author.goto(f"{report}/edit/1")
    expect(author.locator("#f-organising_authority")).to_have_value(re.compile("EPANODOS"))
    look(author, "visit-step-1")
    author.goto(f"{report}/edit/3")
    look(author, "visit-step-3")
    author.locator("#save-next").click()

    author.wait_for_url(re.compile(r"/edit/4\?saved=1"))
    author.locator("#f-pq").fill("education")  # the practice database
    author.locator("#search-practices").click()
    author.wait_for_url(re.compile(r"pq=education"))
    author.locator('#found input[name="observed_practice_ids"]').first.check()
    look(author, "visit-step-4")
    author.locator("#save-next").click()
    author.wait_for_url(re.compile(r"/edit/5\?saved=1"))
    author.locator("#f-findings").fill("Os mentores ajudam.")
    author.locator("#save-next").click()
    author.wait_for_url(re.compile(r"/edit/6\?saved=1"))
    author.locator("#f-recommendations").fill("Financiar mentores.")
    # Each recommendation to follow up is a row addressed to the registry's bodies or the EU.
    author.locator("#f-recommendation_items-0-text").fill("Financiar mentores por dois anos.")
    author.locator("#f-recommendation_items-0-addressees").select_option(index=[0, 1])
    author.locator("#save").click()
    author.wait_for_url(re.compile(r"/edit/6\?saved=1$"))
    chosen = author.locator("#f-recommendation_items-0-addressees option:checked")
    expect(chosen).to_have_count(2)
    expect(author.locator("#f-recommendation_items-1-text")).to_have_value("")
    look(author, "visit-step-6")

    author.locator('nav a[href$="/participants"]').click()  # apart: personal data
    author.locator("#f-participant_names").fill("Eleni Markou\nNikos Pappas")
    author.locator("#save").click()
    author.wait_for_url(re.compile(r"/participants\?saved=1"))
    look(author, "visit-participants")
    author.goto(f"{report}/edit/6")
    author.locator("#submit-report").click()
    author.wait_for_url(re.compile(rf"{report}\?submitted=1$"))
    expect(author.locator("#participants")).to_contain_text("Eleni Markou")

    admin = people.signed_in("admin@example.net")
    admin.locator(f'#reports-to-review a[href="{report}/review"]').click()
    admin.wait_for_url(re.compile(r"/review$"))
    look(admin, "visit-review")
    admin.locator("#a-changes").fill("Diga quanto custa um mentor.")
    admin.locator("#request-changes").click()
    admin.wait_for_url(re.compile(r"done=request-changes"))
    expect(admin.locator("#comments")).to_contain_text("Diga quanto custa um mentor.")
    look(admin, "visit-changes-requested")

    author.goto(f"{report}/edit/5")
    expect(author.locator("#changes-requested")).to_be_visible()
    expect(author.locator("#comments")).to_contain_text("Diga quanto custa um mentor.")
    author.locator("#f-findings").fill("Os mentores ajudam. Custo: dois postos.")
    author.locator("#save").click()
    author.wait_for_url(re.compile(r"/edit/5\?saved=1"))
    look(author, "visit-step-5-changes")
    author.goto(f"{report}/edit/6")
    author.locator("#submit-report").click()
    author.wait_for_url(re.compile(r"submitted=1"))

    admin.goto(f"{report}/review")
    admin.locator("#a-confirm").check()
    admin.locator("#publish").click()
    admin.wait_for_url(re.compile(r"done=publish"))
    expect(admin.locator("#status")).to_contain_text("Published")
    look(admin, "visit-published")
    admin.goto("/followup")  # the recommendation now waits for its addressees
    expect(admin.locator("main")).to_contain_text("Financiar mentores por dois anos.")
    look(admin, "followup")
    admin.goto(f"/followup/reports/{report.rsplit('/', 1)[-1]}")
    expect(admin.locator("main")).to_contain_text("Financiar mentores por dois anos.")
    look(admin, "followup-report")
    author.goto(f"{report}/edit/1")  # published: the author's form is closed
    expect(author.locator("#not-allowed")).to_be_visible()
