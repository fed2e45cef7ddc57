"""What the browser journeys share: a node (or hub) started in its own process, the accounts
on it, one chromium for a run of browser tests, and `look()` — the checks every page passes.

Chromium is started once and kept while browser tests follow one another (`--dist loadfile`
gives a worker whole files); it is closed before the first test that is not a browser test,
because Playwright's sync API leaves its event loop set as the running one, and an async
test after it would fail to start its own.
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from federation import keys
from node import migrations
from node.cli.users import find_organisations
from node.core import accounts
from node.core.auth import UserRole
from tests.conftest import KEPT_SETTINGS, REQUIRE_SERVICES, free_port
from tests.federation.conftest import OPERATOR, enrol, in_db, new_signing_key

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("INTEGRA_SCREENSHOTS") or Path(__file__).parent / "screenshots")
DESKTOP = {"width": 1280, "height": 900}
NARROW = {"width": 320, "height": 800}
READY_WITHIN = 90.0  # seconds for a server to answer /readyz
T = TypeVar("T")


def clean_env(env: dict[str, str]) -> dict[str, str]:
    """The caller's environment without its `INTEGRA_` settings, then `env`."""
    kept = {
        k: v for k, v in os.environ.items() if not k.startswith("INTEGRA_") or k in KEPT_SETTINGS
    }
    return kept | env


@cache
def _migrated_template() -> Path:
    folder = tempfile.mkdtemp(prefix="integra-web-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    made = Path(folder) / "template.db"
    migrations.upgrade(f"sqlite:///{made}")
    return made


def migrated(path: Path) -> str:
    """A SQLite database at `path` with the schema and no rows: a copy of one migrated once
    per pytest process (the migrations cost some 2 s a database)."""
    shutil.copy(_migrated_template(), path)
    return f"sqlite:///{path}"


def serve(name: str, root: Path, env: dict[str, str], *args: str) -> tuple[Any, str]:
    """`python -m node serve` in its own process (log: `root/<name>.log`), once it answers
    /readyz. `env` holds the server's settings (DATABASE_URL, INTEGRA_…)."""
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "node", "serve", "--port", str(port), *args],
            env=clean_env(env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    process.wait(timeout=20)
    said = (root / f"{name}.log").read_text()[-3000:]
    raise AssertionError(f"{name} never became ready:\n{said}")


def stop(*processes: Any) -> None:
    """Ask every server to stop at once, then wait for each (they shut down side by side)."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        process.wait(timeout=20)


def in_thread(work: Callable[[], T]) -> T:
    """`work()` in a thread of its own: once a browser test ran, Playwright keeps an event loop
    running in this one, where `asyncio.run` refuses to start."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(work).result()


def add_users(db: str, users: Iterable[tuple[str, str, list[str]]], password: str) -> None:
    """As `integra user add --password-stdin` does for each (e-mail, role, organisation refs),
    in this process (tests/node/test_cli.py runs the command; here it was a Python started
    per account, seconds of CPU each)."""

    async def add(session: AsyncSession) -> None:
        for email, role, orgs in users:
            await accounts.create_user(
                session, email=accounts.normalised_email(email), name=None, role=UserRole(role),
                password=password, organisations=orgs, find_organisations=find_organisations,
                by=OPERATOR,
            )  # fmt: skip

    in_thread(lambda: in_db(db, add))


def signing_key(db: str, data_dir: Path, country: str, role: str = "node") -> tuple[str, str]:
    """As `integra keys init` does, in this process: the key's fingerprint and public key."""
    public = in_thread(lambda: new_signing_key(db, data_dir, country, role))
    return keys.fingerprint(keys.key_id_of(keys.unb64(public))), public


def enrol_peer(db: str, origin: str, url: str, public: str, kind: str) -> None:
    """As `integra hub enrol` (kind node) and `integra mirror add` (kind hub) do, in this
    process (tests/federation/test_sync.py runs the commands)."""
    in_thread(lambda: enrol(db, origin, url, public, kind))


# --- one chromium for consecutive browser tests ---------------------------------------------


class _Chromium:
    def __init__(self) -> None:
        self.playwright: Any = None
        self.browser: Any = None

    def get(self) -> Any:
        if self.browser is None:
            from playwright.sync_api import sync_playwright

            self.playwright = sync_playwright().start()
            self.browser = self.playwright.chromium.launch(executable_path=CHROMIUM)
        return self.browser

    def close(self) -> None:
        if self.browser is not None:
            self.browser.close()
            self.playwright.stop()
            self.browser = self.playwright = None


CHROMIUM_RUN = _Chromium()


@pytest.fixture
def browser() -> Any:
    """The run's chromium (started by the first browser test that asks for it)."""
    if not Path(CHROMIUM).exists():
        if REQUIRE_SERVICES:
            raise RuntimeError(f"{CHROMIUM} is required here (CI): apt-get install -y chromium")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return CHROMIUM_RUN.get()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, None, None]:
    yield  # the test's fixtures are torn down first (their pages and contexts closed)
    if nextitem is None or nextitem.get_closest_marker("browser") is None:
        CHROMIUM_RUN.close()


def pytest_sessionfinish() -> None:
    CHROMIUM_RUN.close()


# --- what every page passes --------------------------------------------------------------


@cache
def _axe() -> Any:
    from axe_playwright_python.sync_playwright import Axe

    return Axe()


def look(page: Any, name: str) -> None:
    """axe-core finds no serious or critical violation, the page does not scroll sideways at
    320 px; a screenshot at desktop width and at 320 px under `$INTEGRA_SCREENSHOTS`."""
    violations = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in _axe().run(page).response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert violations == [], f"{name}: {violations}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}-desktop.png", full_page=True)
    page.set_viewport_size(NARROW)
    width = page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=SHOTS / f"{name}-320.png", full_page=True)
    page.set_viewport_size(DESKTOP)
    assert width <= NARROW["width"], f"{name} scrolls sideways at 320 px ({width} px wide)"


def errors_of(page: Any) -> list[str]:
    """The page's script errors from now on (a list the test asserts empty at its end)."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def wait_until(check: Any, what: str, seconds: float = 60, every: float = 0.3) -> Any:
    """Poll `check()` until it returns something true, or fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"never {what} within {seconds} s")
        time.sleep(every)
