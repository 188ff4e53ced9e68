"""The test shop in Chromium for the tracker tests: a watched page of it, and a wait that says
what had arrived when it times out (the stored, the quarantined, the pages' requests to us)."""

from __future__ import annotations

import time

import pytest

from events.models import Event, RejectedEvent

# A visitor's browser, not a test robot: posthog-js drops every event of a browser that says it
# is automated (navigator.webdriver, "HeadlessChrome" in the User-Agent), as bot traffic.
VISITOR = {
    "user_agent": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36"
    )
}
NOT_AUTOMATED = "Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => false})"
NETWORK: list[str] = []  # the pages' requests to the server, shown when a wait times out
# The paths of the server's intake that the pages' requests are logged for.
INTAKE_PATHS = (
    "/events",
    "/identify",
    "/alias",
    "/e/",
    "/i/v0/e",
    "/flags",
    "/array/",
    "/com.snowplowanalytics",
    "/v1/",
)


def wait_for(predicate, what: str, timeout: float = 20.0, page=None):
    """Poll; with a page, wait through playwright so that its events keep arriving."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if page is not None:
            page.wait_for_timeout(200)
        else:
            time.sleep(0.2)
    rejected = list(RejectedEvent.objects.values_list("reasons", flat=True)[:3])
    stored = list(Event.objects.values_list("event_type", flat=True))
    pytest.fail(
        f"timed out waiting for {what}; stored: {stored}; quarantined: {rejected}; "
        f"requests: {NETWORK[-20:]}"
    )


def shop_page(browser, init_script: str | None = None, device: dict | None = None):
    options = device or {}
    context = browser.new_context(**{"viewport": {"width": 1100, "height": 700}, **options})
    context.set_default_timeout(10_000)
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on(
        "requestfailed",
        lambda r: NETWORK.append(f"failed {r.method} {r.url}: {r.failure}"),
    )
    page.on(
        "requestfinished",
        lambda r: (
            NETWORK.append(f"{r.method} {r.url} -> {r.response().status}")
            if any(path in r.url for path in INTAKE_PATHS)
            else None
        ),
    )
    return context, page, errors
