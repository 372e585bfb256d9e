"""The JavaScript client hears a job's deletion on its event stream: a real browser, a real uvicorn.

The server ends a job's stream with ``event: deleted`` when the job is gone;
``waitForJob`` must reject at once with a ``JobDeletedError`` (code
``job_deleted``), not wait on, nor report a bare 404 from a reconnection.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone

from jobs.models import Job, JobStatus

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (pip install -r requirements.txt)"
)
expect = sync_api.expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "alice-pass-123"  # the `user` fixture's

# Start waiting in the page; the outcome lands in window.waited, each progress
# report's status in window.statuses.
START_WAITING = """
async (jobUrl) => {
  const client = await import("/static/jobs/client.js");
  window.statuses = [];
  window.waited = null;
  client
    .waitForJob(jobUrl, { transport: "events", onProgress: (p) => window.statuses.push(p.status) })
    .then(
      (value) => { window.waited = { resolved: true, value }; },
      (error) => {
        window.waited = {
          resolved: false,
          name: error.name,
          code: error.code,
          status: error.status,
          message: error.message,
          isApiError: error instanceof client.ApiError,
          // Guarded: a client without the class must still report what it rejected with.
          isJobDeletedError: Boolean(client.JobDeletedError) && error instanceof client.JobDeletedError,
        };
      },
    );
}
"""


def test_wait_for_job_rejects_with_job_deleted_error_when_the_stream_says_deleted(
    asgi_server, user, browser_page, screenshot
):
    page = browser_page
    job = Job.objects.create(kind="purchases.execute", owner=user)  # pending: no cluster runs it
    page.goto(f"{asgi_server}/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{asgi_server}/")

    job_requests: list[str] = []
    page.on("request", lambda request: str(job.pk) in request.url and job_requests.append(request.url))
    page.evaluate(START_WAITING, f"{asgi_server}/api/jobs/{job.pk}/")
    # The stream is open once its first `status` event has been reported.
    page.wait_for_function("window.statuses.length > 0")
    assert page.evaluate("window.statuses") == ["pending"]

    # Cancelled and purged in one go (a staff purge right after the cancel):
    # the change wakes the stream, which finds the job gone and says `deleted`.
    with transaction.atomic():
        Job.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED, finished_at=timezone.now())
        Job.objects.filter(pk=job.pk).delete()

    page.wait_for_function("window.waited !== null", timeout=10_000)
    waited = page.evaluate("window.waited")
    screenshot(page, "client-deleted-job")
    assert waited["resolved"] is False, waited
    assert waited["name"] == "JobDeletedError", waited
    assert waited["isJobDeletedError"] and waited["isApiError"], waited
    assert waited["code"] == "job_deleted"
    assert waited["status"] == 404
    assert "job was deleted" in waited["message"]
    # Rejected on the event itself: no reconnection to find a 404, no long poll.
    assert job_requests == [f"{asgi_server}/api/jobs/{job.pk}/events/"], job_requests

