"""GET /api/jobs/ (list), POST /api/jobs/{id}/cancel/ and DELETE /api/jobs/{id}/."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, JobStatus
from jobs.runner import run_job
from tests.integration.api_helpers import assert_json_404, cancel_url, job_url, make_job

pytestmark = pytest.mark.django_db


def make_jobs(owner, count, **fields):
    """``count`` jobs created one minute apart, oldest first."""
    start = timezone.now() - timedelta(hours=1)
    return [make_job(owner, created_at=start + timedelta(minutes=i), **fields) for i in range(count)]


# --- list ------------------------------------------------------------------


def test_list_shows_only_own_jobs_newest_first(api, user, other_user):
    mine = make_jobs(user, 3)
    make_jobs(other_user, 2)
    response = api.get("/api/jobs/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"results", "next", "previous"}
    assert [item["id"] for item in body["results"]] == [str(job.pk) for job in reversed(mine)]
    assert body["next"] is None and body["previous"] is None


def test_list_items_are_job_documents(api, user):
    make_job(user, traceback="Traceback: secret")
    item = api.get("/api/jobs/").json()["results"][0]
    assert {"id", "url", "status", "progress", "error", "result"} <= set(item)
    assert "traceback" not in item and "payload" not in item


def test_list_is_cursor_paginated(api, user):
    jobs = list(reversed(make_jobs(user, 5)))
    first = api.get("/api/jobs/", {"page_size": 2}).json()
    assert [item["id"] for item in first["results"]] == [str(j.pk) for j in jobs[:2]]
    assert "cursor=" in first["next"] and first["previous"] is None
    second = api.get(first["next"]).json()
    assert [item["id"] for item in second["results"]] == [str(j.pk) for j in jobs[2:4]]
    assert second["previous"]
    third = api.get(second["next"]).json()
    assert [item["id"] for item in third["results"]] == [str(jobs[4].pk)]
    assert third["next"] is None


def test_list_page_size_is_capped(api, user):
    make_jobs(user, 3)
    assert len(api.get("/api/jobs/", {"page_size": 100000}).json()["results"]) == 3


@pytest.mark.parametrize("page_size", ["0", "-1", "abc", "\u00b2", "\u0663"])
def test_list_bad_page_size_is_400_not_500(api, user, page_size):
    # "²" and "٣" pass str.isdigit() but not int().
    make_jobs(user, 1)
    api.raise_request_exception = False
    response = api.get("/api/jobs/", {"page_size": page_size})
    assert response.status_code == 400, response.content
    assert "page_size" in response.json()


def test_list_bad_cursor_is_404_json(api, user):
    make_jobs(user, 1)
    assert_json_404(api.get("/api/jobs/", {"cursor": "garbage"}))


@pytest.mark.parametrize("position", ["abc", "2024-13-45", "1e400", "\x00"])
def test_list_tampered_cursor_is_404_not_500(api, user, position):
    make_jobs(user, 2)
    api.raise_request_exception = False
    cursor = base64.b64encode(f"p={position}".encode()).decode()
    response = api.get("/api/jobs/", {"cursor": cursor})
    assert_json_404(response)


@pytest.mark.parametrize("kind", ["k" * 101, "a\x00b"])
def test_list_unusable_kind_filter_is_400(api, user, kind):
    response = api.get("/api/jobs/", {"kind": kind})
    assert response.status_code == 400
    assert "kind" in response.json()


def test_list_filters_by_status(api, user):
    pending = make_job(user)
    completed = make_job(user, status=JobStatus.COMPLETED)
    make_job(user, status=JobStatus.FAILED)
    ids = [i["id"] for i in api.get("/api/jobs/", {"status": "completed"}).json()["results"]]
    assert ids == [str(completed.pk)]
    ids = [i["id"] for i in api.get("/api/jobs/", {"status": "pending"}).json()["results"]]
    assert ids == [str(pending.pk)]


def test_list_filters_by_kind(api, user):
    purchase = make_job(user)
    make_job(user, kind="reports.build")
    ids = [i["id"] for i in api.get("/api/jobs/", {"kind": "purchases.execute"}).json()["results"]]
    assert ids == [str(purchase.pk)]
    assert api.get("/api/jobs/", {"kind": "nothing.here"}).json()["results"] == []


def test_list_unknown_status_is_400_with_a_message(api, user):
    response = api.get("/api/jobs/", {"status": "bogus"})
    assert response.status_code == 400
    message = " ".join(response.json()["status"])
    assert "bogus" in message and "pending" in message


# --- cancel ----------------------------------------------------------------


def test_cancel_pending_job_is_200_and_cancelled(api, user):
    job = make_job(user)
    response = api.post(cancel_url(job.pk))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["cancel_requested"] is True
    assert body["error"]["code"] == "cancelled"
    assert body["finished_at"] is not None
    assert not response.has_header("Retry-After")
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED


def test_cancelled_pending_job_is_never_run(api, user):
    job = make_job(user)
    api.post(cancel_url(job.pk))
    assert run_job(str(job.pk)) == "skipped"
    assert Job.objects.get(pk=job.pk).status == JobStatus.CANCELLED


def test_cancel_processing_job_is_202_and_requested(api, user):
    job = make_job(user, status=JobStatus.PROCESSING)
    response = api.post(cancel_url(job.pk))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "processing"
    assert body["cancel_requested"] is True
    assert response.has_header("Retry-After")
    assert Job.objects.get(pk=job.pk).cancel_requested is True


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_cancel_finished_job_is_409(api, user, status):
    job = make_job(user, status=status)
    response = api.post(cancel_url(job.pk))
    assert response.status_code == 409
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == "job_finished"
    assert status in body["detail"]
    assert Job.objects.get(pk=job.pk).status == status


def test_cancel_another_users_job_is_404(api, other_user):
    job = make_job(other_user)
    assert_json_404(api.post(cancel_url(job.pk)))
    job.refresh_from_db()
    assert job.status == JobStatus.PENDING and job.cancel_requested is False


def test_cancel_unknown_job_is_404(api, user):
    assert_json_404(api.post(cancel_url("nope")))


def test_cancel_get_is_405(api, user):
    job = make_job(user)
    response = api.get(cancel_url(job.pk))
    assert response.status_code == 405
    assert "detail" in response.json()


# --- delete ----------------------------------------------------------------


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_delete_finished_job_is_204_and_gone(api, user, status):
    job = make_job(user, status=status)
    response = api.delete(job_url(job.pk))
    assert response.status_code == 204
    assert response.content == b""
    assert not Job.objects.filter(pk=job.pk).exists()
    # Its owner is told it was deleted (tests/integration/test_api_tombstones.py).
    assert api.get(job_url(job.pk)).status_code == 410


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.PROCESSING])
def test_delete_active_job_is_409_and_kept(api, user, status):
    job = make_job(user, status=status)
    response = api.delete(job_url(job.pk))
    assert response.status_code == 409
    assert response.json()["code"] == "job_not_finished"
    assert Job.objects.filter(pk=job.pk, status=status).exists()


def test_delete_another_users_job_is_404_and_kept(api, other_user):
    job = make_job(other_user, status=JobStatus.COMPLETED)
    assert_json_404(api.delete(job_url(job.pk)))
    assert Job.objects.filter(pk=job.pk).exists()


def test_delete_purchase_job_keeps_its_order(api, user, make_product, django_capture_on_commit_callbacks):
    from purchases.models import Order
    from tests.integration.api_helpers import post_json, purchase_body

    product = make_product()
    job_id = post_json(api, "/api/purchases/", purchase_body(product.pk), django_capture_on_commit_callbacks).json()["id"]
    assert run_job(job_id) == JobStatus.COMPLETED
    assert api.delete(job_url(job_id)).status_code == 204
    order = Order.objects.get()
    assert order.job_id is None and order.status == "paid"
    assert api.get(f"/api/orders/{order.pk}/").status_code == 200


def test_delete_malformed_id_is_404(api, user):
    assert_json_404(api.delete(job_url("123")))


def test_post_to_job_detail_is_405(api, user):
    job = make_job(user)
    assert api.post(job_url(job.pk)).status_code == 405
