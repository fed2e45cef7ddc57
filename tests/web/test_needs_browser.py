"""Needs heard, in Debian's chromium on a real node: an editor records a
need (the form first refused for want of a kind, then accepted) and the National Point sees it
grouped; each page checked with axe and saved at desktop width and at 320 px.

    .venv/bin/pytest tests/web/test_needs_browser.py -m browser -n 0
"""

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import async_sessionmaker

from node.core.auth import system_principal
from node.core.db import create_engine
from node.core.settings import async_url
from registry.schemas import OrganisationCreate
from registry.service import create_organisation
from tests import factories
from tests.web.conftest import DESKTOP, add_users, look, migrated, serve, stop

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("needs-web")
    db = migrated(data_dir / "node.db")
    # In a thread of its own: the browser tests' chromium keeps an event loop running here.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, organisation(db)).result()
    env = {"DATABASE_URL": db, "INTEGRA_DATA_DIR": str(data_dir)}
    process, url = serve("serve", data_dir, env)
    try:
        users = [
            ("editor@example.net", "editor", ["gr-epanodos"]),
            ("admin@example.net", "admin", []),
        ]
        add_users(db, users, PASSWORD)
        yield url
    finally:
        stop(process)


async def organisation(db: str) -> None:
    engine = create_engine(async_url(db), pooled=False)
    try:
        async with async_sessionmaker(engine)() as session:
            body = factories.organisation(name="EPANODOS", ref="gr-epanodos")
            await create_organisation(session, OrganisationCreate(**body), by=system_principal("t"))
            await session.commit()
    finally:
        await engine.dispose()


def signed_in(browser: Browser, url: str, email: str) -> Page:
    page = browser.new_context(base_url=url, locale="en-GB", viewport=DESKTOP).new_page()
    page.goto("/sign-in?next=/needs")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("form.stacked button").click()
    page.wait_for_url(re.compile(r"/needs$"))
    return page


@pytest.mark.browser
def test_an_editor_records_a_need_and_the_national_point_sees_it_grouped(
    browser: Browser, node: str
) -> None:
    page = signed_in(browser, node, "editor@example.net")
    look(page, "needs-empty")
    page.locator("#f-description").fill("Our probation officers need training on exit work.")
    page.locator("#f-kind").evaluate("select => select.removeAttribute('required')")
    page.locator("#record-need").click()
    expect(page.locator("#problems")).to_contain_text("Kind of need")
    look(page, "needs-refused")
    page.locator("#f-kind").select_option("training")
    page.locator("#f-target_groups-released_prisoners").check()
    page.locator("#record-need").click()
    expect(page.locator("#done")).to_be_visible()
    expect(page.locator("#your-needs")).to_contain_text("need training on exit work")
    look(page, "needs-recorded")
    page.context.close()

    admin = signed_in(browser, node, "admin@example.net")
    admin.locator("#summary-link").click()
    expect(admin.locator("#by-kind")).to_contain_text("Training and education")
    expect(admin.locator("#kind-training")).to_contain_text("Released prisoners")
    look(admin, "needs-summary")
    admin.goto("/eu/needs")
    look(admin, "needs-eu")
    admin.context.close()
