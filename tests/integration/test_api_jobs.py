"""GET /api/jobs/{id}/: the job document, ETag/304, Retry-After, 404s and query count."""

from __future__ import annotations

import uuid

import pytest
from jobs.models import Job, JobStatus
from jobs.runner import GENERIC_FAILURE, run_job
from tests.integration.api_helpers import (
    JOB_DOCUMENT_KEYS,
    assert_json_404,
    job_url,
    make_job,
    post_json,
    purchase_body,
    set_status,
)

pytestmark = pytest.mark.django_db


def test_job_document_has_exactly_the_documented_keys(api, user):
    job = make_job(user, payload={"goods": [{"product_id": 1, "quantity": 2}], "secret": "x"})
    response = api.get(job_url(job.pk))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == JOB_DOCUMENT_KEYS
    assert set(body["progress"]) == {"percentage", "message"}
    assert body["id"] == str(job.pk)
    assert body["url"] == f"http://testserver/api/jobs/{job.pk}/"
    assert body["kind"] == "purchases.execute"
    assert body["status"] == "pending"
    assert body["progress"] == {"percentage": 0, "message": ""}
    assert body["result"] is None and body["error"] is None
    assert body["attempts"] == 0 and body["max_attempts"] == 3
    assert body["cancel_requested"] is False
    assert body["started_at"] is None and body["finished_at"] is None and body["expires_at"] is None
    assert body["created_at"]
    assert b"secret" not in response.content and b"payload" not in response.content


def test_etag_and_if_none_match_gives_empty_304(api, user):
    job = make_job(user)
    first = api.get(job_url(job.pk))
    etag = first["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2
    again = api.get(job_url(job.pk))
    assert again["ETag"] == etag
    cached = api.get(job_url(job.pk), HTTP_IF_NONE_MATCH=etag)
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached["ETag"] == etag


def test_if_none_match_with_a_list_of_etags_matches(api, user):
    job = make_job(user)
    etag = api.get(job_url(job.pk))["ETag"]
    response = api.get(job_url(job.pk), HTTP_IF_NONE_MATCH=f'"other", {etag}')
    assert response.status_code == 304


def test_weak_form_of_the_etag_also_gives_304(api, user):
    # RFC 9110 13.1.2: If-None-Match uses the weak comparison, and proxies that
    # compress responses (nginx gzip) hand clients W/"..." versions of strong ETags.
    job = make_job(user)
    etag = api.get(job_url(job.pk))["ETag"]
    response = api.get(job_url(job.pk), HTTP_IF_NONE_MATCH=f"W/{etag}")
    assert response.status_code == 304


def test_if_none_match_star_gives_304(api, user):
    job = make_job(user)
    assert api.get(job_url(job.pk), HTTP_IF_NONE_MATCH="*").status_code == 304


def test_etag_of_the_202_matches_the_first_poll(api, make_product, django_capture_on_commit_callbacks):
    product = make_product()
    created = post_json(api, "/api/purchases/", purchase_body(product.pk), django_capture_on_commit_callbacks)
    response = api.get(created["Location"], HTTP_IF_NONE_MATCH=created["ETag"])
    assert response.status_code == 304


def test_head_gives_headers_and_304(api, user):
    job = make_job(user)
    head = api.head(job_url(job.pk))
    assert head.status_code == 200 and head.content == b""
    assert api.head(job_url(job.pk), HTTP_IF_NONE_MATCH=head["ETag"]).status_code == 304


def test_progress_change_invalidates_the_etag(api, user):
    job = make_job(user)
    set_status(job, JobStatus.PROCESSING, attempts=1)
    old = api.get(job_url(job.pk))["ETag"]
    Job.objects.filter(pk=job.pk).update(progress_percentage=40, progress_message="Charging")
    response = api.get(job_url(job.pk), HTTP_IF_NONE_MATCH=old)
    assert response.status_code == 200
    assert response["ETag"] != old
    assert response.json()["progress"] == {"percentage": 40, "message": "Charging"}
    assert api.get(job_url(job.pk), HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def test_unrelated_etag_gives_200(api, user):
    job = make_job(user)
    response = api.get(job_url(job.pk), HTTP_IF_NONE_MATCH='"0123456789abcdef"')
    assert response.status_code == 200
    assert response.json()["id"] == str(job.pk)


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.PROCESSING])
def test_retry_after_while_active(api, user, status):
    job = make_job(user, status=status)
    response = api.get(job_url(job.pk))
    assert response.status_code == 200
    assert int(response["Retry-After"]) >= 1


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_no_retry_after_once_terminal(api, user, status):
    job = make_job(user, status=status)
    response = api.get(job_url(job.pk))
    assert response.status_code == 200
    assert not response.has_header("Retry-After")
    assert response.has_header("ETag")


def test_completed_purchase_shows_its_result(api, user, make_product, django_capture_on_commit_callbacks):
    product = make_product(stock=5)
    created = post_json(api, "/api/purchases/", purchase_body(product.pk), django_capture_on_commit_callbacks)
    assert created.status_code == 202
    job_id = created.json()["id"]
    assert run_job(job_id) == JobStatus.COMPLETED
    response = api.get(job_url(job_id))
    body = response.json()
    assert body["status"] == "completed"
    assert body["progress"]["percentage"] == 100
    assert body["result"]["total"] == "20.00"
    assert body["attempts"] == 1
    assert body["finished_at"] and body["expires_at"] and body["started_at"]
    assert not response.has_header("Retry-After")


def test_failed_job_shows_code_and_message_never_a_traceback(api, user, make_product, django_capture_on_commit_callbacks):
    product = make_product()
    created = post_json(
        api, "/api/purchases/", purchase_body(product.pk, payment_token="tok_decline"),
        django_capture_on_commit_callbacks,
    )
    job_id = created.json()["id"]
    assert run_job(job_id) == JobStatus.FAILED
    Job.objects.filter(pk=job_id).update(traceback="Traceback (most recent call last):\n  boom")
    response = api.get(job_url(job_id))
    body = response.json()
    assert body["status"] == "failed"
    assert body["error"] == {
        "code": "payment_declined",
        "message": "The payment was declined. Use another payment method.",
    }
    assert b"Traceback" not in response.content and "traceback" not in body


def test_internal_failure_shows_only_the_generic_error(api, user):
    job = make_job(
        user, status=JobStatus.FAILED, error=GENERIC_FAILURE, attempts=3,
        traceback='Traceback (most recent call last):\n  File "x.py"\nKeyError: secret',
    )
    response = api.get(job_url(job.pk))
    body = response.json()
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == "internal_error"
    assert b"Traceback" not in response.content and b"KeyError" not in response.content


# The unknown uuid's id is fixed so that every xdist worker collects the same tests.
@pytest.mark.parametrize(
    "job_id", [pytest.param(str(uuid.uuid4()), id="unknown-uuid"), "nope", "123", "0" * 32 + "x", "%20"]
)
def test_unknown_or_malformed_job_id_is_404_json(api, user, job_id):
    make_job(user)
    assert_json_404(api.get(job_url(job_id)))


def test_another_users_job_is_404_json(api, other_user):
    job = make_job(other_user)
    assert_json_404(api.get(job_url(job.pk)))


def test_job_id_without_dashes_or_in_upper_case_finds_the_job(api, user):
    job = make_job(user)
    assert api.get(job_url(job.pk.hex)).status_code == 200
    assert api.get(job_url(str(job.pk).upper())).status_code == 200


def test_get_job_takes_at_most_two_queries(api, user, django_assert_max_num_queries):
    job = make_job(user)
    with django_assert_max_num_queries(2):
        response = api.get(job_url(job.pk))
    assert response.status_code == 200


def test_304_takes_at_most_two_queries(api, user, django_assert_max_num_queries):
    job = make_job(user)
    etag = api.get(job_url(job.pk))["ETag"]
    with django_assert_max_num_queries(2):
        response = api.get(job_url(job.pk), HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304


def test_anonymous_get_of_a_job_is_401_not_404(user):
    from rest_framework.test import APIClient

    job = make_job(user)
    response = APIClient().get(job_url(job.pk))
    assert response.status_code == 401
    assert b"purchases.execute" not in response.content


def test_non_json_accept_is_406(api, user):
    job = make_job(user)
    response = api.get(job_url(job.pk), HTTP_ACCEPT="application/xml")
    assert response.status_code == 406


def test_cache_control_keeps_job_documents_private(api, user):
    job = make_job(user)
    cache_control = api.get(job_url(job.pk))["Cache-Control"]
    assert "private" in cache_control and "no-cache" in cache_control
