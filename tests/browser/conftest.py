"""Playwright on Debian's chromium against pytest-django's live server.

One browser per test session (starting chromium is the slow part); a fresh context per test.
Every page records console errors, uncaught exceptions and any request that leaves this
machine, so tests can assert the dashboards are clean and work offline.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest

from events import cors, services
from tests.browser.browser_sdks import SdkInstallError, sdks_install
from tests.browser.shop_server import shop_serving, tracker_snippet
from tests.conftest import service_missing
from tests.helpers import user_with_role

# Playwright's sync API keeps an asyncio loop in the main thread; the ORM calls made by tests
# (seeding rows) run outside it, in plain sync code, which is safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
PASSWORD = "pw-browser-123"


@dataclass
class BrowserPage:
    """A page plus what went wrong on it."""

    page: object
    base_url: str
    errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    request_count: int = 0

    def goto(self, path: str):
        return self.page.goto(self.base_url + path)

    def assert_clean(self) -> None:
        """No console errors, no uncaught exceptions, nothing fetched from outside."""
        assert self.errors == [], self.errors
        assert self.external_requests == [], self.external_requests

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(scope="session")
def _chromium():
    """Started on first use by `browser`, closed at the end of the session."""
    state: dict[str, object] = {}
    yield state
    if "browser" in state:
        state["browser"].close()
        state["playwright"].stop()


@pytest.fixture
def browser(require_chromium, _chromium):
    if "browser" not in _chromium:
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        _chromium["playwright"] = playwright
        _chromium["browser"] = playwright.chromium.launch(
            executable_path=require_chromium, args=CHROMIUM_ARGS
        )
    return _chromium["browser"]


def _watch(page, session: BrowserPage) -> None:
    def on_console(message) -> None:
        if message.type == "error":
            session.errors.append(f"console: {message.text}")

    def on_request(request) -> None:
        session.request_count += 1
        url = urlparse(request.url)
        if url.scheme in {"http", "https", "ws", "wss"} and url.hostname not in LOCAL_HOSTS:
            session.external_requests.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda error: session.errors.append(f"pageerror: {error}"))
    page.on("request", on_request)


@pytest.fixture(scope="session")
def browser_sdks() -> Path:
    """The pinned browser SDKs, installed by `npm ci` on first use (a failure fails in CI)."""
    try:
        return sdks_install()
    except SdkInstallError as exc:
        service_missing(str(exc))


@pytest.fixture
def open_page(browser, live_server):
    """Factory: a new context (viewport, JS on or off) and its watched page."""
    contexts = []

    def make(viewport: dict | None = None, javascript: bool = True) -> BrowserPage:
        context = browser.new_context(
            viewport=viewport or LAPTOP,
            java_script_enabled=javascript,
            accept_downloads=True,
            reduced_motion="reduce",  # charts draw at once: stable screenshots
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        session = BrowserPage(page=page, base_url=live_server.url)
        _watch(page, session)
        return session

    yield make
    # Stop polling and let in-flight requests finish before the test database is flushed.
    for context in contexts:
        for page in context.pages:
            page.goto("about:blank")
    time.sleep(0.3)
    for context in contexts:
        context.close()


@pytest.fixture
def shop(live_server, transactional_db, require_postgres):
    """The shop, with a public key listed for its origin and the tracker pointed at us."""
    with shop_serving() as running:
        key = services.ingestion_key_create(
            name="test shop", kind="public", allowed_origins=[running.origin]
        )
        cors.public_origins_forget()
        running.key = key.raw_key
        running.snippet = tracker_snippet(live_server.url, key.raw_key, flush_interval="300")
        yield running


@pytest.fixture
def analyst(transactional_db, django_user_model):
    return user_with_role("Analyst", username="analyst", password=PASSWORD)


def sign_in(session: BrowserPage, user) -> None:
    """Through the real form, as a person would."""
    session.goto("/accounts/login/")
    session.page.fill("input[name=username]", user.username)
    session.page.fill("input[name=password]", PASSWORD)
    session.page.click("button[type=submit]")
    session.page.wait_for_url(f"{session.base_url}/")


@pytest.fixture
def signed_in(open_page, analyst):
    """A laptop-sized page, signed in."""
    session = open_page()
    sign_in(session, analyst)
    return session
