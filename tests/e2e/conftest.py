"""Fixtures for end-to-end tests: Debian's Chromium driven by Playwright, and a real qcluster.

The browser is the system package (``apt-get install chromium``, ``make test``
installs it when it can); Playwright never downloads one. Without Chromium or
Playwright these tests skip and say why.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest
from django.db import connections

from tests.integration.processes import start, stop

CHROMIUM = Path("/usr/bin/chromium")

# Headless and quiet: no sandbox (we run as root), no GPU, and nothing that
# phones home (without these flags Chromium's background connections to the
# outside are refused noisily).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Playwright's own waits (clicks, navigations, expect) give up after this long.
PAGE_TIMEOUT_MS = 15_000


@pytest.fixture(autouse=True)
def browser_available() -> Any:
    """Skip before anything starts if Chromium or Playwright is missing; return the sync API."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: install Debian's browser with `apt-get install chromium` "
            "(`make test` does it when run as root)"
        )
    return pytest.importorskip(
        "playwright.sync_api",
        reason="Playwright is not installed (pip install -r requirements.txt)",
    )


@pytest.fixture
def qcluster(tmp_path: Path) -> Iterator[Any]:
    """A real ``manage.py qcluster`` on the test database, stopped by PID even on failure."""
    log = tmp_path / "qcluster.log"
    process = start(["qcluster"], log, PURCHASES_PAYMENT_DELAY="0.2")
    process.log_path = log  # type: ignore[attr-defined]
    try:
        yield process
    finally:
        stop(process)


@pytest.fixture
def browser_page(browser_available: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Playwright page in headless Debian Chromium; the browser is closed even on failure."""
    sync_api = browser_available
    # Playwright's sync API keeps an asyncio loop marked as running in this
    # thread, so Django would refuse ORM calls from the test body as "async
    # context". The test's code is plain synchronous code; say so, for this
    # test only (monkeypatch undoes it).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(PAGE_TIMEOUT_MS)
            yield context.new_page()
        finally:
            # While that loop runs, Django keeps this thread's connections in
            # a separate (context-local) store: close them here, or PostgreSQL
            # refuses to drop the test database for "1 other session".
            connections.close_all()
            browser.close()


def qcluster_log(process: Any) -> str:
    """The cluster's output so far, for assertion messages."""
    path = getattr(process, "log_path", None)
    if path is None or not os.path.exists(path):
        return ""
    return Path(path).read_text(errors="replace")[-4000:]
