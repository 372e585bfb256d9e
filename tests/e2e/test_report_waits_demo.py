"""The sales report runs one at a time per user (issue 14, item 1), seen on the demo page.

Two tabs of one user ask for a report as a job; the second waits, pending,
with "Waiting: you have a report running", and starts when the first ends.
"""

from __future__ import annotations

from jobs.models import Job, JobStatus
from tests.support.browser import LIVE_MARKS, playwright_expect, sign_in
from tests.support.processes import log_tail, wait_for

expect = playwright_expect()

pytestmark = LIVE_MARKS

# A cluster boots in a few seconds; each report then takes about 3 s.
JOB_TIMEOUT_MS = 45_000


def test_a_second_report_waits_for_the_first_with_a_message(
    asgi_server, user, start_qcluster, browser_page, screenshot
):
    cluster = start_qcluster(PURCHASES_REPORT_DELAY="3")
    first = browser_page
    sign_in(first, asgi_server, user.username, heading="Sales report")
    second = first.context.new_page()
    second.goto(f"{asgi_server}/")
    expect(second.get_by_role("heading", name="Sales report")).to_be_visible()

    try:
        first.get_by_role("button", name="Run as a job").click()
        wait_for(
            lambda: Job.objects.filter(owner=user, status=JobStatus.PROCESSING).exists(),
            timeout=JOB_TIMEOUT_MS / 1000,
            what="the first report to start",
        )
        second.get_by_role("button", name="Run as a job").click()
        waiting = second.get_by_test_id("report-progress-message")
        expect(waiting).to_have_text("Waiting: you have a report running")
        screenshot(second, "demo_report_waiting")

        expect(first.get_by_test_id("report-result")).to_have_attribute("data-way", "job", timeout=JOB_TIMEOUT_MS)
        expect(second.get_by_test_id("report-result")).to_have_attribute("data-way", "job", timeout=JOB_TIMEOUT_MS)
        screenshot(second, "demo_report_waited")
    except Exception as error:
        raise AssertionError(f"{error}\n--- qcluster log ---\n{log_tail(cluster)}") from error

    earlier, later = Job.objects.filter(owner=user).order_by("created_at")
    assert earlier.status == later.status == JobStatus.COMPLETED
    # One after the other: the second started only once the first had ended.
    assert later.started_at >= earlier.finished_at
