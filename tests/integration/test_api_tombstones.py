"""A removed job answers its owner 410 with when and why (issue 14, item 6); retry from the API (item 7)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from jobs.maintenance import jobs_bulk_purge, jobs_purge_expired
from jobs.models import Job, JobEvent, JobEventType, JobStatus, Tombstone
from jobs.runner import run_job
from tests.integration.api_helpers import assert_json_404, cancel_url, job_url, make_job, post_json, set_status

pytestmark = pytest.mark.django_db
S = JobStatus
REPORT_KIND = "purchases.sales_report"


def retry_url(job_id) -> str:
    return f"/api/jobs/{job_id}/retry/"


def gone_body(response) -> dict:
    assert response.status_code == 410, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    return response.json()


# --- 410 Gone -----------------------------------------------------------------------


def test_a_deleted_job_is_410_for_its_owner_with_when_and_why(api, user):
    job = make_job(user, status=S.COMPLETED)
    before = timezone.now()
    assert api.delete(job_url(job.pk)).status_code == 204
    body = gone_body(api.get(job_url(job.pk)))
    assert set(body) == {"detail", "code", "id", "kind", "removed_at", "reason"}
    assert (body["code"], body["id"], body["kind"], body["reason"]) == ("job_gone", str(job.pk), job.kind, "deleted")
    assert before <= parse_datetime(body["removed_at"]) <= timezone.now()
    assert "deleted" in body["detail"] and body["removed_at"] in body["detail"]


@pytest.mark.parametrize(
    ("remove", "reason", "word"),
    [(lambda: jobs_purge_expired(), "expired", "time to live"), (lambda: jobs_bulk_purge(Job.objects.all()), "purged", "staff")],
)
def test_expired_and_purged_jobs_say_so(api, user, remove, reason, word):
    job = make_job(user, status=S.FAILED, expires_at=timezone.now() - timedelta(seconds=1))
    remove()
    body = gone_body(api.get(job_url(job.pk)))
    assert body["reason"] == reason and word in body["detail"]


def test_every_job_endpoint_answers_410_for_a_gone_job(api, user):
    job = make_job(user, status=S.CANCELLED)
    api.delete(job_url(job.pk))
    responses = [
        api.get(job_url(job.pk)),
        api.get(job_url(job.pk), HTTP_ACCEPT="application/json; indent=2"),  # the DRF path, not the quick poll
        api.delete(job_url(job.pk)),
        api.post(cancel_url(job.pk)),
        api.post(retry_url(job.pk)),
    ]
    assert [gone_body(response)["id"] for response in responses] == [str(job.pk)] * 5


def test_other_users_and_unknown_ids_still_get_the_same_404(api, other_api, user):
    job = make_job(user, status=S.COMPLETED)
    api.delete(job_url(job.pk))
    foreign, unknown = other_api.get(job_url(job.pk)), other_api.get(job_url(uuid.uuid4()))
    assert_json_404(foreign)
    assert_json_404(unknown)
    assert foreign.json() == unknown.json()
    assert_json_404(other_api.post(retry_url(job.pk)))


def test_past_the_retention_a_gone_job_is_404(api, user, settings):
    job = make_job(user, status=S.COMPLETED)
    api.delete(job_url(job.pk))
    settings.JOBS = {**settings.JOBS, "TOMBSTONE_RETENTION": 60}
    assert gone_body(api.get(job_url(job.pk)))
    Tombstone.objects.filter(pk=job.pk).update(removed_at=timezone.now() - timedelta(seconds=61))
    assert_json_404(api.get(job_url(job.pk)))


@pytest.mark.parametrize("accept", ["application/json", "application/json; indent=2"])
def test_polling_a_job_that_exists_never_reads_tombstones(api, user, accept):
    job = make_job(user, status=S.PROCESSING)
    with CaptureQueriesContext(connection) as queries:
        assert api.get(job_url(job.pk), HTTP_ACCEPT=accept).status_code == 200
    assert not [query for query in queries if "jobs_tombstone" in query["sql"]]


# --- POST /api/jobs/{id}/retry/ ------------------------------------------------------


@pytest.mark.parametrize("status", [S.FAILED, S.CANCELLED])
def test_the_owner_retries_a_failed_or_cancelled_report(
    api, user, status, fake_queue, django_capture_on_commit_callbacks
):
    job = make_job(user, kind=REPORT_KIND, status=status, attempts=3, error={"code": "x", "message": "y"})
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(retry_url(job.pk))
    assert response.status_code == 202
    body = response.json()
    assert (body["id"], body["status"], body["attempts"], body["error"]) == (str(job.pk), "pending", 0, None)
    assert response["Location"].endswith(job_url(job.pk))
    assert fake_queue.job_ids == [str(job.pk)]
    retried = JobEvent.objects.get(job_id=job.pk, type=JobEventType.RETRIED)
    assert retried.actor == "api:alice"


def test_a_retried_report_runs_again_as_a_new_attempt(api, user, fake_queue, django_capture_on_commit_callbacks):
    submitted = post_json(
        api, "/api/reports/sales/", {}, django_capture_on_commit_callbacks, HTTP_PREFER="respond-async"
    )
    job = Job.objects.get(pk=submitted.json()["id"])
    set_status(job, S.FAILED, attempts=1, error={"code": "boom", "message": "The report failed."})
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(retry_url(job.pk)).status_code == 202
    assert run_job(str(job.pk)) == S.COMPLETED
    done = api.get(job_url(job.pk)).json()
    assert (done["status"], done["attempts"], done["error"]) == ("completed", 1, None)
    assert (done["result"]["orders"], done["result"]["products"]) == (0, [])  # the report itself
    types = list(JobEvent.objects.filter(job_id=job.pk).values_list("type", flat=True))
    assert types.index(JobEventType.RETRIED) < types.index(JobEventType.COMPLETED)


def test_a_purchase_is_never_retried_from_the_api(api, user, fake_queue):
    job = make_job(user, status=S.FAILED)
    response = api.post(retry_url(job.pk))
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "retry_not_allowed"
    assert "purchases.execute" in body["detail"] and "Submit a new request" in body["detail"]
    assert Job.objects.get(pk=job.pk).status == S.FAILED and fake_queue.enqueued == []


@pytest.mark.parametrize("status", [S.PENDING, S.PROCESSING, S.COMPLETED])
def test_only_failed_or_cancelled_jobs_are_retried(api, user, status, fake_queue):
    job = make_job(user, kind=REPORT_KIND, status=status)
    response = api.post(retry_url(job.pk))
    assert response.status_code == 409
    assert response.json()["code"] == "job_not_retryable"
    assert status in response.json()["detail"]
    assert Job.objects.get(pk=job.pk).status == status and fake_queue.enqueued == []


def test_retry_of_someone_elses_or_an_unknown_job_is_404(other_api, user, fake_queue):
    job = make_job(user, kind=REPORT_KIND, status=S.FAILED)
    assert_json_404(other_api.post(retry_url(job.pk)))
    assert_json_404(other_api.post(retry_url("not-a-uuid")))
    assert Job.objects.get(pk=job.pk).status == S.FAILED and fake_queue.enqueued == []


def test_retry_needs_authentication(client, user):
    job = make_job(user, kind=REPORT_KIND, status=S.FAILED)
    assert client.post(retry_url(job.pk)).status_code == 401
