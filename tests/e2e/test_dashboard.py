"""The live jobs dashboard in a real browser, while a real cluster runs purchases and reports."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from django.contrib.auth.models import Permission

from jobs.models import Job, JobStatus
from purchases.api.schema import PURCHASE_KIND, REPORT_KIND
from tests.support.factories import token_for
from tests.support.browser import LIVE_MARKS
from tests.support.processes import wait_for

pytestmark = LIVE_MARKS

STAFF_PASSWORD = "staff-pass-123"
# The cluster boots, then takes the jobs; the page refreshes every 5 s.
LIVE_TIMEOUT_MS = 60_000
PURCHASES_OK, PURCHASES_DECLINED, REPORTS = 4, 2, 6


@pytest.fixture
def staff(django_user_model):
    """Staff who may view jobs (and their timeline), and nothing else."""
    member = django_user_model.objects.create_user(username="watcher", password=STAFF_PASSWORD, is_staff=True)
    member.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="jobs", codename__in=["view_job", "view_jobevent"])
    )
    return member


def post(url: str, token: str, body: dict, **headers: str) -> int:
    """POST JSON with the user's token; return the status."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    for name, value in {"Content-Type": "application/json", "Authorization": f"Bearer {token}", **headers}.items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def figure(page, kind: str, name: str):
    return page.locator(f'#dash-kinds tr[data-kind="{kind}"] [data-figure="{name}"]')


def test_dashboard_follows_a_running_cluster_without_reloading(
    asgi_server, staff, user, make_product, start_qcluster, browser_available, browser_page, screenshot
):
    expect = browser_available.expect  # Playwright's sync API (the fixture skips without it)
    product = make_product(stock=100)
    # A short payment round trip and report work, so jobs are seen pending and running.
    cluster = start_qcluster(PURCHASES_PAYMENT_DELAY="0.3", PURCHASES_REPORT_DELAY="1")
    page = browser_page
    base = asgi_server
    token = token_for(user)
    try:
        page.goto(f"{base}/admin/login/?next=/admin/")
        page.locator("#id_username").fill(staff.username)
        page.locator("#id_password").fill(STAFF_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("link", name="Jobs dashboard").click()
        expect(page).to_have_url(f"{base}/admin/jobs/dashboard/")
        # Gone if the page is ever reloaded: every change below comes from its own refreshes.
        page.evaluate("window.sameDocument = true")
        expect(figure(page, PURCHASE_KIND, "finished_hour")).to_have_text("0")

        # The cluster shows up, alive, with its workers.
        timeout = {"timeout": LIVE_TIMEOUT_MS}
        cluster_row = page.locator("#dash-clusters tr[data-cluster]").filter(has_text=f"pid {cluster.pid},")
        expect(cluster_row).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
        expect(cluster_row).to_contain_text("s ago")
        expect(cluster_row.locator(".dash-worker").first).to_contain_text("idle", **timeout)
        screenshot(page, "dashboard_idle")
        chart_before = page.locator("#chart-hour canvas").screenshot()
        refreshes_before = int(page.locator(".jobs-dashboard").get_attribute("data-refreshes"))

        purchase = {"goods": [{"product_id": product.pk, "quantity": 1}]}
        for _ in range(PURCHASES_OK):
            assert post(f"{base}/api/purchases/", token, purchase) == 202
        for _ in range(PURCHASES_DECLINED):
            assert post(f"{base}/api/purchases/", token, {**purchase, "payment_token": "tok_decline"}) == 202
        for _ in range(REPORTS):
            assert post(f"{base}/api/reports/sales/", token, {}, Prefer="respond-async") == 202

        # The per-kind table catches up by itself.
        expect(figure(page, PURCHASE_KIND, "finished_hour")).to_have_text(str(PURCHASES_OK + PURCHASES_DECLINED), **timeout)
        expect(figure(page, REPORT_KIND, "finished_hour")).to_have_text(str(REPORTS), **timeout)
        expect(figure(page, PURCHASE_KIND, "failure_rate")).to_have_text("33.3%")
        expect(figure(page, PURCHASE_KIND, "pending")).to_have_text("0", **timeout)
        expect(figure(page, PURCHASE_KIND, "run_p50")).not_to_have_text("–")
        assert page.evaluate("window.sameDocument === true"), "the page was reloaded"
        assert int(page.locator(".jobs-dashboard").get_attribute("data-refreshes")) > refreshes_before
        # The hour's chart now draws the jobs: its pixels changed.
        wait_for(
            lambda: page.locator("#chart-hour canvas").screenshot() != chart_before,
            timeout=LIVE_TIMEOUT_MS / 1000, interval=0.5, what="the hour chart to change",
        )  # fmt: skip
        expect(page.locator("#dash-failures tr[data-job]")).to_have_count(PURCHASES_DECLINED, **timeout)
        expect(page.locator("#dash-failures")).to_contain_text("payment_declined")
        screenshot(page, "dashboard_busy")

        # A failure's link opens that job's admin page.
        first = page.locator("#dash-failures tr[data-job]").first
        job_id = first.get_attribute("data-job")
        first.locator("a.dash-failure-link").click()
        expect(page).to_have_url(re.compile(rf"/admin/jobs/job/{job_id}/change/$"))
        expect(page.locator(".field-status .readonly")).to_have_text("Failed")
        expect(page.locator(".field-error_pretty")).to_contain_text("payment_declined")
        screenshot(page, "dashboard_failure_job")
    except Exception:
        # Where the browser stood; the launcher prints the cluster's log.
        screenshot(page, "dashboard_failed_test")
        raise

    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.FAILED and job.error["code"] == "payment_declined"
    assert Job.objects.filter(kind=REPORT_KIND, status=JobStatus.COMPLETED).count() == REPORTS
