"""A staff member retries a failed purchase in the admin, in a real browser, on a real cluster."""

from __future__ import annotations

import os
import re

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission

from jobs import queue
from jobs.models import JobEvent, JobEventType, JobStatus
from jobs.runner import run_job
from jobs.services import job_submit
from purchases.models import Order, OrderStatus
from tests.support.browser import LIVE_MARKS, playwright_expect
from tests.support.processes import log_tail, wait_for

expect = playwright_expect()

pytestmark = LIVE_MARKS

STAFF_PASSWORD = "staff-pass-123"
RETRY_ACTION = "Retry selected failed or cancelled jobs"


@pytest.fixture
def staff(django_user_model):
    """Staff who may view and retry jobs, and nothing else (not a superuser).

    ``view_jobevent`` too: Django shows an inline only to users with the view
    permission of the inline's own model, so without it the timeline is hidden.
    """
    codenames = ["view_job", "retry_job", "view_jobevent"]
    member = django_user_model.objects.create_user(
        username="operator", password=STAFF_PASSWORD, is_staff=True
    )
    perms = Permission.objects.filter(content_type__app_label="jobs", codename__in=codenames)
    assert sorted(perms.values_list("codename", flat=True)) == sorted(codenames)
    member.user_permissions.add(*perms)
    return member


@pytest.fixture
def failed_purchase(user, make_product, monkeypatch):
    """A purchase that failed for want of stock, then the shelf was refilled."""
    product = make_product(stock=1)
    with monkeypatch.context() as patch:
        # Keep this first run off the broker: the test runs it here, once.
        patch.setattr(queue, "enqueue", lambda job_id, kind: "")
        job = job_submit(
            kind="purchases.execute",
            payload={"goods": [{"product_id": product.pk, "quantity": 3}]},
            owner=user,
        ).job
    assert run_job(str(job.pk)) == JobStatus.FAILED
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error["code"] == "insufficient_stock", job.error
    product.stock = 5
    product.save(update_fields=["stock"])
    return job, product


def test_staff_retries_a_failed_job_and_sees_it_complete(
    live_server, failed_purchase, staff, qcluster, browser_page, screenshot
):
    job, product = failed_purchase
    page = browser_page
    base = live_server.url
    checkbox = f"input.action-select[value='{job.pk}']"
    job_row = page.locator("#result_list tr").filter(has=page.locator(checkbox))

    try:
        # Log in as staff.
        page.goto(f"{base}/admin/login/")
        page.locator("#id_username").fill(staff.username)
        page.locator("#id_password").fill(STAFF_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("#site-name")).to_be_visible()
        expect(page).to_have_url(f"{base}/admin/")

        # The Jobs changelist, filtered on failed jobs from the sidebar.
        page.locator("#content-main").locator("a[href='/admin/jobs/job/']").first.click()
        expect(page).to_have_url(re.compile(r"/admin/jobs/job/$"))
        page.locator("#changelist-filter").get_by_role("link", name="Failed", exact=True).click()
        expect(page).to_have_url(re.compile(r"status__exact=failed"))
        expect(job_row.locator("td.field-status_badge")).to_have_text("Failed")

        # Tick the job, choose the retry action, Go.
        job_row.locator("input.action-select").check()
        page.locator("select[name='action']").select_option(label=RETRY_ACTION)
        page.get_by_role("button", name="Go").click()
        expect(page.locator("ul.messagelist li.success")).to_have_text("Retried 1 job.")

        # The worker picks it up: reload the full list until the row says Completed.
        page.locator("#changelist-filter").get_by_role("link", name="All", exact=True).first.click()
        expect(page).not_to_have_url(re.compile(r"status__exact"))

        def shows_completed() -> bool:
            page.reload()
            return job_row.locator("td.field-status_badge").inner_text().strip() == "Completed"

        try:
            wait_for(shows_completed, timeout=60, interval=0.25, what="the job to show Completed")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- qcluster log ---\n{log_tail(qcluster)}") from None

        # Its detail page: completed, and the timeline tells it was retried by this staff member.
        job_row.locator("th.field-short_id a").click()
        expect(page).to_have_url(re.compile(rf"/admin/jobs/job/{job.pk}/change/$"))
        expect(page.locator(".field-status .readonly")).to_have_text("Completed")
        timeline = page.locator("td.field-type")
        expect(timeline.filter(has_text=re.compile(r"^\s*Retried\s*$"))).to_have_count(1)
        expect(page.locator("td.field-actor").filter(has_text="staff:operator")).to_have_count(1)
        expect(timeline.last).to_have_text("Completed")
    finally:
        # Best effort: on failure this shows where the browser stood.
        screenshot(page, "admin_retry")

    # And in the database.
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED, job.error
    assert job.attempts == 1
    assert job.error is None
    assert int(job.worker.rsplit(":", 1)[1]) != os.getpid(), "ran in the test process, not a worker"
    order = Order.objects.get(job=job)
    assert order.status == OrderStatus.PAID
    assert job.result["order_id"] == order.pk
    product.refresh_from_db()
    assert product.stock == 2
    types = list(JobEvent.objects.filter(job=job).values_list("type", "actor"))
    assert [t for t, _ in types] == [
        JobEventType.CREATED,
        JobEventType.CLAIMED,
        JobEventType.FAILED,
        JobEventType.RETRIED,
        JobEventType.CLAIMED,
        JobEventType.COMPLETED,
    ], types
    assert (JobEventType.RETRIED, "staff:operator") in types
    assert LogEntry.objects.filter(
        user=staff, object_id=str(job.pk), action_flag=CHANGE, change_message="Retried"
    ).exists()
