"""Steps the browser tests share (Playwright's sync API, imported when called)."""

from __future__ import annotations

from typing import Any

import pytest

USER_PASSWORD = "alice-pass-123"  # the `user` fixture's

# A browser test of the whole stack: a real server and cluster, so committed data.
LIVE_MARKS = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.real_queue, pytest.mark.django_db(transaction=True)]


def playwright_expect() -> Any:
    """Playwright's ``expect``; called at a test module's top, it skips the module without Playwright."""
    return pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (pip install -r requirements.txt)"
    ).expect


def sign_in(page: Any, base: str, username: str, *, password: str = USER_PASSWORD, heading: str = "Products") -> None:
    """Sign in through the form on ``/``; wait for ``heading`` and the page's script (the jobs list fetched)."""
    from playwright.sync_api import expect

    page.goto(f"{base}/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/")
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    # The module has loaded once the jobs list has been fetched.
    expect(page.locator("#jobs-body")).not_to_contain_text("Loading")
