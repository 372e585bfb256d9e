"""The JavaScript client hears a job's deletion on its event stream: a real browser, a real uvicorn.

The server ends a job's stream with ``event: deleted`` when the job is gone;
``waitForJob`` must reject at once with a ``JobDeletedError`` (code
``job_deleted``), not wait on, nor report a bare 404 from a reconnection.
When the job left a tombstone, the event (and a later ``410``) says when and
why: a ``JobGoneError``.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone

from jobs.maintenance import jobs_bulk_purge
from jobs.models import Job, JobStatus, Tombstone
from tests.support.browser import playwright_expect

expect = playwright_expect()

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
          isJobGoneError: Boolean(client.JobGoneError) && error instanceof client.JobGoneError,
          reason: error.reason ?? null,
          removedAt: error.removedAt ? error.removedAt.toISOString() : null,
        };
      },
    );
}
"""


def sign_in(page, base: str, user) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


def test_wait_for_job_rejects_with_job_deleted_error_when_the_stream_says_deleted(
    asgi_server, user, browser_page, screenshot
):
    page = browser_page
    job = Job.objects.create(kind="purchases.execute", owner=user)  # pending: no cluster runs it
    sign_in(page, asgi_server, user)

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



def test_a_job_purged_while_watched_and_waited_for_again_is_a_job_gone_error(
    asgi_server, user, browser_page, screenshot
):
    page = browser_page
    job = Job.objects.create(kind="purchases.execute", owner=user)  # pending: no cluster runs it
    sign_in(page, asgi_server, user)
    job_url = f"{asgi_server}/api/jobs/{job.pk}/"
    page.evaluate(START_WAITING, job_url)
    page.wait_for_function("window.statuses.length > 0")

    # Purged by staff, as the admin's action does: a tombstone in the same transaction.
    with transaction.atomic():
        Job.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED, finished_at=timezone.now())
        jobs_bulk_purge(Job.objects.filter(pk=job.pk))
    removed_at = Tombstone.objects.get(pk=job.pk).removed_at

    page.wait_for_function("window.waited !== null", timeout=10_000)
    during = page.evaluate("window.waited")
    # Waiting again for the same job: the stream is refused (410), the long poll says why.
    page.evaluate(START_WAITING, job_url)
    page.wait_for_function("window.waited !== null", timeout=10_000)
    after = page.evaluate("window.waited")
    screenshot(page, "client-gone-job")

    for waited in (during, after):
        assert waited["name"] == "JobGoneError", waited
        assert waited["isJobGoneError"] and waited["isJobDeletedError"] and waited["isApiError"], waited
        assert (waited["code"], waited["status"], waited["reason"]) == ("job_gone", 410, "purged")
        assert waited["removedAt"][:19] == removed_at.isoformat()[:19]
        assert "purged by staff" in waited["message"]
