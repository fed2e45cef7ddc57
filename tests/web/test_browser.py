"""Journeys in a real browser (Debian's chromium, driven by Playwright) on a real server.

Every page visited is checked with axe-core (no serious or critical violation), must not
scroll sideways at 320 px, and is saved as a screenshot at desktop width and at 320 px under
`$INTEGRA_SCREENSHOTS` (default `tests/web/screenshots/`, ignored by git):

    .venv/bin/pytest tests/web/test_browser.py -m browser -n 0
"""

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from node.web import i18n
from tests.conftest import REQUIRE_SERVICES
from tests.web.conftest import (
    CHROMIUM,
    DESKTOP,
    add_users,
    enrol_peer,
    look,
    migrated,
    serve,
    signing_key,
    stop,
)

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "reader@example.org", "a long enough password"
# A vocabulary code read as such (`post_release`) instead of its label.
CODE = re.compile(r"\b[a-z]+_[a-z_]+\b")
# Where the interface's own words are (record contents are the authors' words).
INTERFACE = (
    "header, footer, h1:not([lang]), legend, .check label, dt, h2, .meta, .kicker, .chips li, "
    "th, caption, button, form label, .total, .paging a, .notice, .rating, .field > p.muted"
)

if not Path(CHROMIUM).exists():
    if REQUIRE_SERVICES:
        raise RuntimeError(f"{CHROMIUM} is required here (CI): apt-get install -y chromium")
    pytest.skip("chromium is not installed (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`integra serve --sample-data` with one practitioner account, in its own process. One
    database is enough: the pages' behaviour on both is tested without a browser
    (test_pages.py), and a browser journey is the slowest kind of test."""
    data_dir = tmp_path_factory.mktemp("web")
    db = migrated(data_dir / "node.db")
    add_users(db, [(EMAIL, "practitioner", [])], PASSWORD)
    env = {"DATABASE_URL": db, "INTEGRA_DATA_DIR": str(data_dir)}
    process, url = serve("serve", data_dir, env, "--sample-data")
    try:
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A Portuguese node, the hub that enrols it, and a French node that mirrors the hub:
    three real processes, as in tests/federation/test_sync.py (SQLite)."""
    root = tmp_path_factory.mktemp("federation")
    dbs = {name: migrated(root / f"{name}.db") for name in ("pt", "hub", "fr")}
    fast = {"INTEGRA_HUB_SYNC_INTERVAL": "PT1S"}
    processes = []
    try:
        pt_env = {"INTEGRA_COUNTRY": "PT"}
        _, pt_key = signing_key(dbs["pt"], root / "pt", "PT")
        pt, pt_url = serve(
            "pt", root, pt_env | {"DATABASE_URL": dbs["pt"], "INTEGRA_DATA_DIR": str(root / "pt")},
            "--sample-data",
        )  # fmt: skip
        processes.append(pt)
        hub_env = {"INTEGRA_COUNTRY": "EU", "INTEGRA_ROLE": "hub"}
        _, hub_key = signing_key(dbs["hub"], root / "hub", "EU", "hub")
        enrol_peer(dbs["hub"], "PT", pt_url, pt_key, "node")
        hub, hub_url = serve(
            "hub", root,
            hub_env | fast | {"DATABASE_URL": dbs["hub"], "INTEGRA_DATA_DIR": str(root / "hub")},
        )  # fmt: skip
        processes.append(hub)
        fr_env = {"INTEGRA_COUNTRY": "FR"}
        enrol_peer(dbs["fr"], "EU", hub_url, hub_key, "hub")
        signing_key(dbs["fr"], root / "fr", "FR")
        fr, fr_url = serve(
            "fr", root,
            fr_env | fast | {"DATABASE_URL": dbs["fr"], "INTEGRA_DATA_DIR": str(root / "fr")},
            "--sample-data",
        )  # fmt: skip
        processes.append(fr)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pooled = httpx.get(f"{fr_url}/api/v1/eu/search", params={"limit": 1}).json()
            if pooled["total"]:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the French node never mirrored the hub's pool")
        yield {"hub": hub_url, "fr": fr_url}
    finally:
        stop(*processes)


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    context = browser.new_context(base_url=server, locale="el-GR", viewport=DESKTOP)
    page = context.new_page()
    errors: list[str] = []  # script errors and refusals of the content security policy
    # A search typed on replaces the one in flight (hx-sync): htmx logs that abort as an
    # error; a failed request is still caught (htmx:responseError, htmx:sendError).
    aborts = ("htmx:sendAbort", "htmx:afterRequest")
    page.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and not m.text.startswith(aborts) else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert errors == []


def test_a_practitioner_searches_in_greek_filters_and_follows_an_organisation(
    page: Page,
) -> None:
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "el")
    look(page, "search-start")
    first = page.locator(".hit h3").first.inner_text()
    page.locator('.paging a[rel="next"]').click()  # keyset paging, through the URL
    page.wait_for_url(re.compile(r"cursor="))
    expect(page.locator(".hit h3").first).not_to_have_text(first)
    page.goto("/")

    count = page.locator("#result-count").inner_text()
    page.locator("#q").press_sequentially("επανενταξη", delay=20)  # no accents, as typed
    page.wait_for_url(re.compile(r"q=%CE%B5"))  # htmx put the query in the URL
    expect(page.locator("#result-count")).not_to_have_text(count)  # the live region told
    expect(page.locator("#result-count")).to_contain_text("Βρέθηκαν")
    expect(page.locator(".hit mark").first).to_be_visible()
    everything = page.locator(".hit").count()

    page.locator('input[name="country"][value="GR"]').check()
    page.wait_for_url(re.compile(r"country=GR"))
    page.locator("#f-intervention_type-social_work").focus()
    page.keyboard.press("Space")  # by keyboard: the box keeps the focus after the swap
    page.wait_for_url(re.compile(r"country=GR.*intervention_type=social_work"))
    expect(page.locator("#f-intervention_type-social_work")).to_be_focused()
    expect(page.locator(".hit")).not_to_have_count(everything)
    assert page.locator(".hit").count() >= 1
    expect(page.locator('label[for^="f-intervention_type"]').first).not_to_contain_text("_")
    look(page, "search-filtered")

    page.reload()  # the search is a link: the same results from the URL alone
    expect(page.locator('input[name="intervention_type"][value="social_work"]')).to_be_checked()

    page.locator(".hit h3 a").first.click()
    page.wait_for_url(re.compile(r"/practices/"))
    expect(page.locator("h1")).to_be_visible()
    look(page, "practice")

    page.locator('.field a[href^="/organisations/"]').first.click()
    page.wait_for_url(re.compile(r"/organisations/"))
    expect(page.locator("#contact-points")).to_contain_text("Τα σημεία επαφής")
    assert page.locator('#contact-points a[href^="mailto:"]').count() == 0
    look(page, "organisation-anonymous")

    page.locator('header a[href="/organisations"]').click()  # the registry directory
    page.wait_for_url(re.compile(r"/organisations$"))
    everyone = page.locator(".hit").count()
    page.locator("#d-kind").focus()
    page.keyboard.press("End")  # by keyboard: the last kind ("Other"), then submit
    page.locator(".directory-filters button").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"kind=other"))
    expect(page.locator("#d-kind")).to_have_value("other")
    assert page.locator(".hit").count() < everyone
    look(page, "directory")


def test_a_protocol_shows_its_parties_and_leads_to_them(page: Page, server: str) -> None:
    listed = httpx.get(f"{server}/api/v1/protocols", params={"country": "GR"}).json()["items"]
    page.goto(f"/protocols/{listed[0]['id']}")
    expect(page.locator("#parties tbody tr")).to_have_count(len(listed[0]["parties"]))
    look(page, "protocol")
    page.locator("#parties tbody a").first.click()
    page.wait_for_url(re.compile(r"/organisations/"))
    expect(page.locator("#protocols")).to_contain_text(listed[0]["title"])


def _organisation_with_contacts(server: str) -> str:
    listed = httpx.get(f"{server}/api/v1/organisations", params={"country": "GR", "limit": 100})
    return next(o["id"] for o in listed.json()["items"] if o["ref"] == "gr-epanodos")


def test_a_signed_in_practitioner_sees_contact_points_an_anonymous_visitor_does_not(
    page: Page, server: str
) -> None:
    page.goto("/study-visits")  # reports name their participants: signed-in readers only
    expect(page.locator("#sign-in-needed")).to_be_visible()
    assert page.locator(".hit").count() == 0
    look(page, "study-visits-anonymous")
    page.goto(f"/organisations/{_organisation_with_contacts(server)}")
    assert page.locator('#contact-points a[href^="mailto:"]').count() == 0

    page.locator("#contact-points a", has_text="Σύνδεση").click()
    page.wait_for_url(re.compile(r"/sign-in"))
    look(page, "sign-in")
    page.locator("#email").fill(EMAIL)
    page.locator("#password").fill(PASSWORD)
    page.locator("form.stacked button").click()
    page.wait_for_url(re.compile(r"/organisations/"))
    expect(page.locator('#contact-points a[href^="mailto:"]').first).to_be_visible()
    expect(page.locator("header .who")).to_have_text(EMAIL)
    look(page, "organisation-signed-in")

    page.locator('header a[href="/study-visits"]').click()
    page.wait_for_url(re.compile(r"/study-visits$"))
    look(page, "study-visits")
    page.locator(".hit a").first.click()
    page.wait_for_url(re.compile(r"/study-visits/"))
    expect(page.locator("#participants li").first).to_be_visible()
    look(page, "study-visit")
    page.goto(f"/organisations/{_organisation_with_contacts(server)}")

    page.locator("header form button").click()
    page.wait_for_url(re.compile(r"/$"))
    page.go_back()
    page.reload()
    assert page.locator('#contact-points a[href^="mailto:"]').count() == 0


def _english_only(language: str) -> set[str]:
    """The interface's English strings that read differently in `language`."""
    msgids = {m.id for m in i18n.read_catalogue("en") if isinstance(m.id, str)}
    gettext = i18n.gettext_for(language)
    return {m for m in msgids if gettext(m) != m and "%(" not in m}


def _untranslated(page: Page, language: str) -> list[str]:
    texts: list[str] = page.eval_on_selector_all(
        INTERFACE, "elements => elements.map(e => e.innerText)"
    )
    english = _english_only(language) if language != "en" else set()
    found = []
    for text in texts:
        for line in text.splitlines():
            for piece in re.split(r" · |, ", line):
                piece = re.sub(r"\s*\([\d\s.,]+\)$", "", piece).strip().rstrip(":")
                if piece in english or CODE.search(piece):
                    found.append(piece)
    return found


def test_each_language_leaves_no_interface_string_untranslated(page: Page, server: str) -> None:
    organisation = f"/organisations/{_organisation_with_contacts(server)}"
    page.goto(organisation)
    for language in i18n.LANGUAGES:
        page.locator(f'nav.languages a[hreflang="{language}"]').click()
        page.wait_for_url(re.compile(r"/organisations/"))
        expect(page.locator("html")).to_have_attribute("lang", language)
        assert _untranslated(page, language) == [], f"{language}: organisation page"

        page.goto("/organisations")  # every filter's labels
        assert _untranslated(page, language) == [], f"{language}: directory"

        page.goto("/")  # every practice, every facet
        expect(page.locator("html")).to_have_attribute("lang", language)
        assert _untranslated(page, language) == [], f"{language}: search page"
        look(page, f"search-{language}")

        page.locator(".hit h3 a").first.click()
        page.wait_for_url(re.compile(r"/practices/"))
        assert _untranslated(page, language) == [], f"{language}: practice page"
        look(page, f"practice-{language}")
        page.goto(organisation)


def test_the_api_documentation_works_with_no_internet(browser: Browser, server: str) -> None:
    """Swagger UI from the package's own files, in our page and colours: axe passes on it,
    with an operation opened too."""
    context = browser.new_context(base_url=server, viewport=DESKTOP)
    context.route(lambda url: not url.startswith(server), lambda route: route.abort())
    page = context.new_page()
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Integra Exchange")
    expect(page.locator(".opblock").first).to_be_visible()
    look(page, "docs")
    page.locator(".opblock-get .opblock-summary-control").nth(3).click()
    expect(page.locator(".opblock.is-open .parameters-container")).to_be_visible()
    look(page, "docs-operation")
    context.close()


def test_a_visitor_on_a_mirroring_node_switches_to_eu_wide(
    browser: Browser, federation: dict[str, str]
) -> None:
    """On the French node: this country's practices, then by keyboard the EU-wide pool it
    mirrors, a Portuguese record there with its signature checked; the same record at the hub,
    signed twice (by Portugal over its entry, by the hub over its relay)."""
    context = browser.new_context(base_url=federation["fr"], locale="fr-FR", viewport=DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto("/")
    expect(page.locator("#scope-country")).to_be_checked()
    assert page.locator('input[name="country"][value="PT"]').count() == 0
    look(page, "mirror-search")

    page.locator("#scope-country").focus()
    page.keyboard.press("ArrowDown")  # the radio group, by keyboard: EU-wide
    page.wait_for_url(re.compile(r"scope=eu"))
    expect(page.locator('input[name="country"][value="PT"]')).to_have_count(1)
    expect(page.locator(".hit .meta").first).to_contain_text("Portugal")
    look(page, "mirror-search-eu")
    page.reload()  # the switch is in the URL
    expect(page.locator("#scope-eu")).to_be_checked()

    page.locator(".hit h3 a").first.click()
    page.wait_for_url(re.compile(r"/eu/records/PT:"))
    expect(page.locator("#signature-status")).to_have_class("signed")
    expect(page.locator("#verify .chain li.valid")).to_have_count(1)  # the mirror keeps PT's
    look(page, "eu-record-mirror")

    path = page.url.removeprefix(federation["fr"])
    page.goto(federation["hub"] + path)
    expect(page.locator("#verify .chain li.valid")).to_have_count(2)  # the hub's relay, PT's
    expect(page.locator("#verify")).to_contain_text("Portugal")
    look(page, "eu-record-hub")
    page.goto(federation["hub"] + "/")
    expect(page.locator('input[name="country"][value="PT"]')).to_have_count(1)
    look(page, "hub-search")
    context.close()
    assert errors == []
