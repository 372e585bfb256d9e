"""Fixtures for end-to-end tests: Debian's Chromium driven by Playwright, and a real qcluster.

The browser is the system package (``apt-get install chromium``, ``make test``
installs it when it can); Playwright never downloads one. Without Chromium or
Playwright these tests skip and say why.

Tests save a screenshot of each final page state with the ``screenshot``
fixture, under ``var/screenshots/`` (or ``$E2E_SCREENSHOT_DIR``); the paths are
listed at the end of the pytest run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections

from tests.support.processes import BASE_DIR, UVICORN, Launcher, answers, child_env, free_port, log_tail, wait_for

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


SCREENSHOTS = pytest.StashKey[list[Path]]()


def screenshot_dir() -> Path:
    return Path(os.environ.get("E2E_SCREENSHOT_DIR") or BASE_DIR / "var" / "screenshots")


@pytest.fixture
def start_qcluster(launcher: Launcher) -> Callable[..., subprocess.Popen]:
    """Start real ``manage.py qcluster`` processes with extra environment; all stopped by PID."""
    return launcher.qcluster


@pytest.fixture
def qcluster(start_qcluster: Callable[..., subprocess.Popen]) -> subprocess.Popen:
    """A real ``manage.py qcluster`` on the test database, stopped by PID even on failure."""
    return start_qcluster(PURCHASES_PAYMENT_DELAY="0.2")


@pytest.fixture
def asgi_server(transactional_db: None, launcher: Launcher) -> str:
    """A real uvicorn process serving ``project.asgi`` on the test database; its base URL.

    Started as ``manage.py serve`` starts it, on a free port, after a
    ``collectstatic`` (WhiteNoise serves the collected files, as in ``make run``).
    Stopped by PID even on failure, before the test database is flushed.
    """
    pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install -r requirements.txt)")
    subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "collectstatic", "--no-input", "--verbosity", "0"],
        cwd=BASE_DIR, env=child_env(), check=True, timeout=120,
    )  # fmt: skip
    port = free_port()
    process = launcher.spawn(
        [*UVICORN, "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off"], "uvicorn"
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(
        lambda: process.poll() is not None or answers(f"{base}/"),
        timeout=30,
        what=f"uvicorn on port {port}",
    )
    if process.poll() is not None:
        pytest.fail(f"uvicorn exited with {process.returncode}:\n{log_tail(process)}")
    return base


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """Save a full-page screenshot as ``<name>-<database>.png``; listed at the end of the run."""

    def save(page: Any, name: str) -> Path:
        folder = screenshot_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}-{connection.vendor}.png"
        page.screenshot(path=str(path), full_page=True)
        request.config.stash.setdefault(SCREENSHOTS, []).append(path)
        return path

    return save


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """List the screenshots the browser tests saved, so CI output says where they are."""
    paths = config.stash.get(SCREENSHOTS, [])
    if paths:
        terminalreporter.write_sep("-", f"browser screenshots in {screenshot_dir()}")
        for path in paths:
            terminalreporter.write_line(str(path))


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
