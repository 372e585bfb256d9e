"""The demo page on a 390 px phone and the job changelist in a 1366 px window: nothing spills sideways."""

from __future__ import annotations

import re
from decimal import Decimal

from jobs.models import JobStatus
from purchases.models import Order, OrderLine, OrderStatus
from tests.support.browser import LIVE_MARKS, playwright_expect, sign_in
from tests.support.factories import make_job
from tests.support.processes import log_tail

expect = playwright_expect()

pytestmark = LIVE_MARKS

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}
OUTCOME_TIMEOUT_MS = 45_000
ADMIN_PASSWORD = "admin-pass-123"

# The widest the page is, and every table or card whose right edge passes its card's
# (or the window's): a table spilling out of its card counts even when the page hides it.
OVERFLOW_JS = """() => {
  const width = window.innerWidth;
  const spills = [];
  for (const node of document.querySelectorAll("table, .card, .result")) {
    if (node.offsetParent === null) continue;  // hidden
    const box = node.getBoundingClientRect();
    const card = node.parentElement.closest(".card") || document.documentElement;
    const limit = Math.min(width, card.getBoundingClientRect().right);
    if (box.right > limit + 0.5 || node.scrollWidth > node.clientWidth + 1) {
      spills.push(`${node.tagName.toLowerCase()}#${node.id}.${node.className}: ${Math.round(box.right)} > ${Math.round(limit)}`);
    }
  }
  return {page: document.documentElement.scrollWidth, window: width, spills};
}"""


def assert_fits(page, where: str) -> None:
    fit = page.evaluate(OVERFLOW_JS)
    assert fit["page"] <= fit["window"], f"{where}: the page scrolls sideways ({fit})"
    assert fit["spills"] == [], f"{where}: {fit['spills']}"


def test_the_demo_page_fits_a_390_px_phone(
    live_server, user, make_product, start_qcluster, browser_page, screenshot
):
    headphones = make_product(name="Noise-cancelling headphones", sku="HP-01", price=Decimal("159.90"), stock=15)
    order = Order.objects.create(owner=user, status=OrderStatus.PAID, total=Decimal("319.80"), currency="EUR")
    OrderLine.objects.create(order=order, product=headphones, quantity=2, unit_price=headphones.price)
    make_job(user, kind="purchases.sales_report", status=JobStatus.FAILED,
             error={"code": "report_failed", "message": "The report could not be made."})  # fmt: skip
    cluster = start_qcluster(PURCHASES_PAYMENT_DELAY="0.2")
    page = browser_page
    page.set_viewport_size(PHONE)

    try:
        page.goto(f"{live_server.url}/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert_fits(page, "the sign-in form")
        sign_in(page, live_server.url, user.username)
        assert_fits(page, "signed in")

        # A purchase: its order table is the widest of the page.
        page.get_by_label("Quantity of Noise-cancelling headphones").fill("2")
        page.get_by_role("button", name="Buy").click()
        heading = page.locator("#purchase-result").get_by_role("heading", name=re.compile("confirmed$"))
        try:
            expect(heading).to_be_visible(timeout=OUTCOME_TIMEOUT_MS)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- qcluster log ---\n{log_tail(cluster)}") from None
        assert_fits(page, "after a purchase")

        # The recent jobs say what each job is in words, and the status as the admin does.
        jobs = page.locator("#jobs-body")
        expect(jobs.locator("tr").first.locator(".job-kind")).to_have_text("Purchase")
        expect(jobs.locator("tr").first.locator(".badge")).to_have_text("Completed")
        expect(jobs).to_contain_text("Sales report")
        expect(jobs).to_contain_text("The report could not be made.")
        assert "purchases." not in jobs.inner_text() and "report_failed" not in jobs.inner_text()

        # A report run now: another table in a card.
        page.get_by_test_id("report-run-now").click()
        expect(page.get_by_test_id("report-table")).to_be_visible()
        assert_fits(page, "after a report")

        # Dates the wrong way round: the message names the field in words.
        page.get_by_test_id("report-from").fill("2024-03-02")
        page.get_by_test_id("report-to").fill("2024-03-01")
        page.get_by_test_id("report-run-now").click()
        expect(page.get_by_test_id("report-from-error")).to_have_text("Must not be after the end date.")
        assert "date_to" not in page.locator("#report").inner_text()
        assert_fits(page, "with a date error")
    finally:
        screenshot(page, "demo_page_390px")


def test_the_job_changelist_fits_a_1366_px_window(live_server, admin_user, browser_page, screenshot):
    # The widest things a row holds: a long kind, a long owner name, a long status.
    owner = type(admin_user).objects.create_user(username="margaret.hamilton.long.name@example.com")
    jobs = [
        make_job(owner, kind="purchases.sales_report", status=JobStatus.PROCESSING, progress_percentage=40),
        make_job(owner, kind="purchases.execute", status=JobStatus.CANCELLED),
        make_job(admin_user, kind="tests.noop", status=JobStatus.COMPLETED, progress_percentage=100),
    ]
    page = browser_page
    page.set_viewport_size(LAPTOP)

    try:
        page.goto(f"{live_server.url}/admin/login/")
        page.locator("#id_username").fill(admin_user.username)
        page.locator("#id_password").fill("password")
        page.get_by_role("button", name="Log in").click()
        page.goto(f"{live_server.url}/admin/jobs/job/")
        expect(page.locator("#result_list tbody tr")).to_have_count(3)
        # Django keeps the navigation sidebar open unless the user closed it.
        expect(page.locator("#nav-sidebar")).to_be_visible()

        fit = page.evaluate(
            """() => {
              const table = document.querySelector("#result_list");
              const box = table.parentElement;
              const right = box.getBoundingClientRect().right;
              const cut = [...table.querySelectorAll("thead th")]
                .filter(th => th.getBoundingClientRect().right > right + 0.5)
                .map(th => th.className);
              return {table: table.scrollWidth, box: box.clientWidth, page: document.documentElement.scrollWidth,
                      window: window.innerWidth, cut};
            }"""
        )
        assert fit["table"] <= fit["box"], fit
        assert fit["page"] <= fit["window"], fit
        assert fit["cut"] == [], fit
        headers = page.locator("#result_list thead th .text").all_text_contents()
        assert [h.strip() for h in headers[1:]] == [  # after the select-all box
            "ID", "Kind", "Owner", "Status", "Progress", "Attempts", "Created", "Duration",
        ], headers  # fmt: skip

        # The short id the list shows finds its job.
        short = str(jobs[1].pk)[:8]
        page.locator("#searchbar").fill(short)
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#result_list tbody tr")).to_have_count(1)
        expect(page.locator("#result_list tbody tr th a")).to_have_text(short)
        screenshot(page, "admin_changelist_1366px")

        # Its page writes every section heading in one case, the timeline's too.
        page.locator("#result_list tbody tr th a").click()
        expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
        cases = page.locator("fieldset h2").evaluate_all(
            "headings => headings.map(h => [h.textContent.trim(), getComputedStyle(h).textTransform])"
        )
        assert ["Timeline", "none"] in cases and all(case == "none" for _, case in cases), cases
    finally:
        screenshot(page, "admin_job_page_1366px")
