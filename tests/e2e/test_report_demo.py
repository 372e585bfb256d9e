"""The sales report on the demo page, in a real browser, on uvicorn and a real cluster.

"Run now" posts plainly and gets the report inline; "Run as a job" posts with
``Prefer: respond-async`` and follows the job's event stream. Both must show
the same table.
"""

from __future__ import annotations

import os
from decimal import Decimal

from jobs.models import Job, JobStatus
from purchases.conf import purchases_setting
from purchases.models import Order, OrderLine, OrderStatus
from tests.support.browser import LIVE_MARKS, playwright_expect, sign_in
from tests.support.processes import log_tail

expect = playwright_expect()

pytestmark = LIVE_MARKS

# A cluster boots in a few seconds before it takes the job.
JOB_TIMEOUT_MS = 45_000


def paid_order(owner, *lines, status=OrderStatus.PAID) -> Order:
    """An order of ``(product, quantity)`` lines at the products' prices."""
    total = sum((product.price * quantity for product, quantity in lines), Decimal("0"))
    order = Order.objects.create(
        owner=owner, status=status, total=total, currency=purchases_setting("CURRENCY")
    )
    for product, quantity in lines:
        OrderLine.objects.create(order=order, product=product, quantity=quantity, unit_price=product.price)
    return order


def shown_report(page) -> dict:
    """What the result box shows: rows of (name, quantity, total), the grand total, the range."""
    rows = page.get_by_test_id("report-row").evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.textContent.trim()))"
    )
    return {
        "rows": rows,
        "total": page.get_by_test_id("report-total").inner_text(),
        "range": page.get_by_test_id("report-range").inner_text(),
    }


def test_report_runs_now_and_as_a_job_with_the_same_totals(
    asgi_server, user, other_user, make_product, start_qcluster, browser_page, screenshot
):
    mug = make_product(name="Mug", sku="MUG-01", price=Decimal("7.90"))
    keyboard = make_product(name="Mechanical keyboard", sku="KB-01", price=Decimal("89.00"))
    paid_order(user, (mug, 3), (keyboard, 1))
    paid_order(user, (mug, 1))
    paid_order(user, (keyboard, 5), status=OrderStatus.RELEASED)  # not paid: not counted
    paid_order(other_user, (keyboard, 2))  # someone else's
    currency = purchases_setting("CURRENCY")
    # Artificial work in the worker only, so the job's steps are seen on the way.
    cluster = start_qcluster(PURCHASES_REPORT_DELAY="3")
    page = browser_page
    requests: list[tuple[str, str, str | None, str]] = []
    page.on("request", lambda r: requests.append((r.method, r.url, r.headers.get("prefer"), r.resource_type)))
    result = page.get_by_test_id("report-result")
    report_url = f"{asgi_server}/api/reports/sales/"

    try:
        sign_in(page, asgi_server, user.username, heading="Sales report")

        page.get_by_role("button", name="Run now").click()
        expect(result).to_have_attribute("data-way", "inline")
        expect(page.get_by_test_id("report-how")).to_have_text("Answered at once by the server.")
        expect(page.get_by_test_id("report-progress")).to_be_hidden()
        inline = shown_report(page)
        screenshot(page, "demo_report_inline")

        page.get_by_role("button", name="Run as a job").click()
        expect(result).to_have_attribute("data-way", "job", timeout=JOB_TIMEOUT_MS)
        expect(page.get_by_test_id("report-how")).to_contain_text("Ran as a job")
        as_job = shown_report(page)
        screenshot(page, "demo_report_job")
    except Exception as error:
        raise AssertionError(f"{error}\n--- qcluster log ---\n{log_tail(cluster)}") from error

    assert inline["rows"] == as_job["rows"]
    assert inline["total"] == as_job["total"]
    assert inline["range"] == as_job["range"]
    assert sorted(inline["rows"]) == [
        ["Mechanical keyboard", "1", f"89.00 {currency}"],
        ["Mug", "4", f"31.60 {currency}"],
    ]
    assert inline["total"] == f"120.60 {currency}"
    assert inline["range"].endswith(": 2 paid orders.")

    # The job way showed progress: the bar reached 100 % and every report the
    # page received is listed, the worker's steps among them.
    expect(page.get_by_test_id("report-progress")).to_be_visible()
    expect(page.get_by_test_id("report-progress-bar")).to_have_attribute("value", "100")
    steps = page.get_by_test_id("report-steps").locator("li").all_inner_texts()
    assert steps[0].startswith("0%"), steps
    assert "10% Reading orders" in steps, steps
    assert "50% Summing 2 orders" in steps, steps
    assert steps[-1].startswith("100%"), steps

    # Only "Run as a job" asked for a job, and the page followed it over the stream.
    posts = [(prefer, url) for method, url, prefer, _ in requests if method == "POST" and url == report_url]
    assert posts == [(None, report_url), ("respond-async", report_url)]
    job = Job.objects.get(owner=user)
    assert job.status == JobStatus.COMPLETED
    assert job.result_status == 200
    assert job.result["total"] == "120.60"
    assert int(job.worker.rsplit(":", 1)[1]) != os.getpid(), "ran in the cluster, not here"
    streams = [url for method, url, _, kind in requests if kind == "eventsource"]
    assert streams == [f"{asgi_server}/api/jobs/{job.pk}/events/"]
    long_polls = [url for _, url, _, _ in requests if "/api/jobs/" in url and "wait=" in url]
    assert long_polls == [], "the stream worked, so the page never fell back to the long poll"


def test_report_dates_in_the_wrong_order_are_shown_under_the_date(
    asgi_server, user, browser_page, screenshot
):
    page = browser_page
    sign_in(page, asgi_server, user.username, heading="Sales report")
    page.get_by_label("From").fill("2030-01-02")
    page.get_by_label("To").fill("2030-01-01")

    # Refused before any job is made, whichever way it is asked for.
    for button in ("Run as a job", "Run now"):
        page.get_by_role("button", name=button).click()
        expect(page.get_by_test_id("report-from-error")).to_have_text("Must not be after the end date.")
        expect(page.get_by_label("From")).to_have_attribute("aria-invalid", "true")
        expect(page.get_by_label("From")).to_be_focused()
        expect(page.get_by_test_id("report-error")).to_have_text(
            "Please check the dates. From: Must not be after the end date."
        )
        expect(page.get_by_test_id("report-result")).to_be_hidden()
        expect(page.get_by_test_id("report-progress")).to_be_hidden()
    screenshot(page, "demo_report_bad_dates")
    assert not Job.objects.filter(owner=user).exists()

    page.get_by_label("From").fill("2030-01-01")
    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_test_id("report-range")).to_have_text("From 2030-01-01 to 2030-01-01: 0 paid orders.")
    expect(page.get_by_test_id("report-from-error")).to_have_text("")
    expect(page.get_by_label("From")).not_to_have_attribute("aria-invalid", "true")
