"""The demo shop at ``/`` in a real browser, on a real cluster: buy, fail for stock, cancel."""

from __future__ import annotations

import os
import re
from decimal import Decimal

from django_q.models import OrmQ

from jobs.models import Job, JobStatus
from jobs.services import job_submit
from purchases.models import Order, OrderStatus
from tests.support.browser import LIVE_MARKS, playwright_expect, sign_in
from tests.support.processes import log_tail, wait_for

expect = playwright_expect()

pytestmark = LIVE_MARKS

# A cluster boots in a few seconds; a purchase then takes its payment delay.
OUTCOME_TIMEOUT_MS = 45_000


def stock_cell(page, product):
    return page.locator(f"tr[data-product-id='{product.pk}'] [data-stock]")


def ran_in_worker(job: Job) -> bool:
    return int(job.worker.rsplit(":", 1)[1]) != os.getpid()


def test_purchase_shows_progress_then_the_order(
    live_server, user, make_product, start_qcluster, browser_page, screenshot
):
    keyboard = make_product(name="Mechanical keyboard", sku="KB-01", price=Decimal("89.00"), stock=5)
    mouse = make_product(name="Wireless mouse", sku="MS-01", price=Decimal("29.50"), stock=10)
    # Slower than the page's one-second polls, so "Charging the payment" is seen.
    cluster = start_qcluster(PURCHASES_PAYMENT_DELAY="2.5")
    page = browser_page
    status = page.locator("#progress-message")
    result = page.locator("#purchase-result")

    try:
        sign_in(page, live_server.url, user.username)
        expect(stock_cell(page, keyboard)).to_have_text("5")
        page.get_by_label("Quantity of Mechanical keyboard").fill("2")
        page.get_by_label("Quantity of Wireless mouse").fill("1")
        page.get_by_role("button", name="Buy").click()

        expect(page.get_by_label("Purchase progress")).to_be_visible()
        expect(page.locator("#purchase-progress")).to_be_focused()
        expect(status).to_have_attribute("aria-live", "polite")
        expect(page.get_by_role("button", name="Cancel purchase")).to_be_visible()
        expect(status).to_have_text("Charging the payment", timeout=OUTCOME_TIMEOUT_MS)
        expect(page.get_by_label("Purchase progress")).to_have_attribute("value", "40")

        heading = result.get_by_role("heading", name=re.compile(r"^Order #\d+ confirmed$"))
        try:
            expect(heading).to_be_visible(timeout=OUTCOME_TIMEOUT_MS)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- qcluster log ---\n{log_tail(cluster)}") from None
        expect(result).to_be_focused()
        expect(status).to_have_text("Order confirmed")
        expect(page.locator("#progress-steps li")).to_contain_text(["Charging the payment", "Order confirmed"])
        expect(result.locator("td.total")).to_have_text("207.50 EUR")
        expect(result.get_by_role("row", name=re.compile("Mechanical keyboard"))).to_contain_text("178.00 EUR")
        expect(page.get_by_role("button", name="Cancel purchase")).to_be_hidden()
        expect(stock_cell(page, keyboard)).to_have_text("3")
        expect(stock_cell(page, mouse)).to_have_text("9")
        newest_job = page.locator("#jobs-body tr").first
        expect(newest_job.locator(".badge")).to_have_text("Completed")
    finally:
        screenshot(page, "demo_purchase_completed")

    order = Order.objects.get(owner=user)
    assert order.status == OrderStatus.PAID
    assert order.total == Decimal("207.50")
    assert sorted(order.lines.values_list("product_id", "quantity")) == [(keyboard.pk, 2), (mouse.pk, 1)]
    assert heading.inner_text() == f"Order #{order.pk} confirmed"
    job = order.job
    assert job.status == JobStatus.COMPLETED
    assert job.result["order_id"] == order.pk
    assert ran_in_worker(job), "ran in the test process, not a worker"
    keyboard.refresh_from_db()
    mouse.refresh_from_db()
    assert (keyboard.stock, mouse.stock) == (3, 9)


def test_out_of_stock_purchase_shows_the_error(
    live_server, user, make_product, start_qcluster, browser_page, screenshot
):
    monitor = make_product(name="27-inch monitor", sku="MN-27", price=Decimal("249.00"), stock=1)
    cluster = start_qcluster(PURCHASES_PAYMENT_DELAY="0.2")
    page = browser_page
    result = page.locator("#purchase-result")

    try:
        sign_in(page, live_server.url, user.username)
        page.get_by_label("Quantity of 27-inch monitor").fill("3")
        page.get_by_role("button", name="Buy").click()

        try:
            expect(result.get_by_role("heading", name="Not enough stock")).to_be_visible(
                timeout=OUTCOME_TIMEOUT_MS
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- qcluster log ---\n{log_tail(cluster)}") from None
        expect(result).to_be_focused()
        expect(result).to_contain_text("Not enough stock (27-inch monitor: 1 left).")
        expect(result).to_contain_text("Nothing was charged.")
        expect(page.locator("#progress-message")).to_have_text(re.compile(r"^Failed at: "))
        expect(stock_cell(page, monitor)).to_have_text("1")
        expect(page.locator("#jobs-body tr").first.locator(".badge")).to_have_text("Failed")
        expect(page.get_by_role("button", name="Buy")).to_be_enabled()
    finally:
        screenshot(page, "demo_out_of_stock")

    job = Job.objects.get(owner=user)
    assert job.status == JobStatus.FAILED
    assert job.error["code"] == "insufficient_stock"
    assert ran_in_worker(job)
    assert not Order.objects.filter(owner=user).exists()
    monitor.refresh_from_db()
    assert monitor.stock == 1


def test_cancel_stops_a_purchase_waiting_behind_a_slow_one(
    live_server, user, other_user, make_product, start_qcluster, browser_page, screenshot
):
    """One worker, busy with another customer's slow payment: our purchase waits, and is cancelled.

    A purchase that is already charging cannot be cancelled (the next test), so
    the cancel lands while the job is still pending.
    """
    headphones = make_product(name="Noise-cancelling headphones", sku="HD-01", stock=5)
    keyboard = make_product(name="Mechanical keyboard", sku="KB-01", price=Decimal("89.00"), stock=5)
    # The other payment keeps the only worker busy for 8 s: time enough to buy and cancel.
    cluster = start_qcluster(PURCHASES_PAYMENT_DELAY="8", Q_WORKERS="1")
    blocker = job_submit(
        kind="purchases.execute",
        payload={"goods": [{"product_id": headphones.pk, "quantity": 1}]},
        owner=other_user,
    ).job
    page = browser_page
    result = page.locator("#purchase-result")

    try:
        sign_in(page, live_server.url, user.username)

        def blocker_is_charging() -> bool:
            blocker.refresh_from_db()
            return blocker.progress_message == "Charging the payment"

        try:
            wait_for(blocker_is_charging, timeout=45, what="the other purchase to occupy the worker")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- qcluster log ---\n{log_tail(cluster)}") from None

        page.get_by_label("Quantity of Mechanical keyboard").fill("2")
        page.get_by_role("button", name="Buy").click()
        expect(page.locator("#progress-message")).to_have_text("Waiting for a worker…")
        cancel = page.get_by_role("button", name="Cancel purchase")
        cancel.click()

        expect(result.get_by_role("heading", name="Purchase cancelled")).to_be_visible()
        expect(result).to_be_focused()
        expect(result).to_contain_text("nothing was charged")
        expect(page.locator("#progress-message")).to_have_text("Cancelled")
        expect(cancel).to_be_hidden()
        expect(stock_cell(page, keyboard)).to_have_text("5")
        expect(page.locator("#jobs-body tr").first.locator(".badge")).to_have_text("Cancelled")
    finally:
        screenshot(page, "demo_cancelled")

    job = Job.objects.get(owner=user)
    assert job.status == JobStatus.CANCELLED
    assert job.error["code"] == "cancelled"
    # The worker gets to the cancelled job after the slow one and skips it (with
    # django-q2's ORM broker its message waits in the queue until then).
    def settled() -> bool:
        blocker.refresh_from_db()
        return blocker.status == JobStatus.COMPLETED and not OrmQ.objects.exists()

    wait_for(settled, timeout=60, what="the slow purchase to finish and the queue to drain")
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.attempts == 0, "a cancelled job is never claimed"
    assert not Order.objects.filter(job=job).exists()
    keyboard.refresh_from_db()
    assert keyboard.stock == 5
    blocker.refresh_from_db()
    assert blocker.status == JobStatus.COMPLETED


def test_cancel_during_the_payment_comes_too_late(
    live_server, user, make_product, start_qcluster, browser_page, screenshot
):
    """Once the payment is under way the purchase completes; the page says the cancel was too late."""
    keyboard = make_product(name="Mechanical keyboard", sku="KB-01", price=Decimal("89.00"), stock=5)
    cluster = start_qcluster(PURCHASES_PAYMENT_DELAY="5")
    page = browser_page
    result = page.locator("#purchase-result")

    try:
        sign_in(page, live_server.url, user.username)
        page.get_by_label("Quantity of Mechanical keyboard").fill("1")
        page.get_by_role("button", name="Buy").click()
        try:
            expect(page.locator("#progress-message")).to_have_text(
                "Charging the payment", timeout=OUTCOME_TIMEOUT_MS
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- qcluster log ---\n{log_tail(cluster)}") from None
        page.get_by_role("button", name="Cancel purchase").click()
        expect(page.locator("#cancel-note")).to_contain_text("Cancel requested")

        heading = result.get_by_role("heading", name=re.compile(r"^Order #\d+ confirmed$"))
        expect(heading).to_be_visible(timeout=OUTCOME_TIMEOUT_MS)
        expect(result).to_be_focused()
        expect(result).to_contain_text("Your cancel came too late")
        expect(stock_cell(page, keyboard)).to_have_text("4")
    finally:
        screenshot(page, "demo_cancel_too_late")

    job = Job.objects.get(owner=user)
    assert job.status == JobStatus.COMPLETED
    assert job.cancel_requested is True
    assert Order.objects.get(job=job).status == OrderStatus.PAID
