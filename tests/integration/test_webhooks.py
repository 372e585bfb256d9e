"""Completion webhooks against a real receiver on loopback: signed, counted, retried, recorded."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from jobs import queue, submit
from jobs.models import Job, JobStatus
from jobs.runner import run_job
from jobs.signals import job_finished
from jobs.webhook_models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from jobs.webhooks.delivery import deliver, due_deliveries
from tests.support import handlers  # noqa: F401 - registers the tests.* kinds
from tests.support.webhook_receiver import receiver  # noqa: F401 - the fixture

SECRET_URL = "/api/webhooks/secret/"
ENDPOINT_URL = "/api/webhooks/endpoint/"


@pytest.fixture
def allowed(receiver):
    """Allow the receiver's host:port, with retries a few hundredths of a second apart."""
    jobs = {"WEBHOOK_ALLOWED_HOSTS": [receiver.host], "WEBHOOK_BACKOFF_BASE": 0.05, "WEBHOOK_TIMEOUT": 5}
    with override_settings(JOBS=jobs):
        yield jobs


@pytest.fixture
def sent(monkeypatch) -> list[Any]:
    """The deliveries sent to the queue (the tests make the attempts themselves)."""
    sent: list[Any] = []
    monkeypatch.setattr(queue, "send_webhook", lambda pk: sent.append(pk) or "task")
    return sent


def subscribe(api, receiver) -> str:
    answer = api.post(SECRET_URL)
    assert answer.status_code == 201, answer.content
    receiver.secret = answer.json()["secret"]
    answer = api.put(ENDPOINT_URL, {"url": receiver.url}, format="json")
    assert answer.status_code == 200, answer.content
    return receiver.secret


def finish_job(user, django_capture_on_commit_callbacks, kind: str = "tests.noop") -> Job:
    job = submit(kind, {"n": 1}, owner=user)
    with django_capture_on_commit_callbacks(execute=True):
        run_job(str(job.pk))
    job.refresh_from_db()
    return job


def deliver_until_settled(timeout: float = 10.0) -> list[str]:
    """Make every due attempt until no delivery is pending; fail after ``timeout`` seconds."""
    outcomes: list[str] = []
    deadline = time.monotonic() + timeout
    while WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).exists():
        assert time.monotonic() < deadline, f"deliveries still pending after {timeout} s: {outcomes}"
        for pk in due_deliveries():
            outcomes.append(deliver(pk))
        time.sleep(0.01)
    return outcomes


@pytest.mark.django_db
def test_a_job_end_is_delivered_signed_once(api, user, receiver, allowed, sent, django_capture_on_commit_callbacks):
    subscribe(api, receiver)
    job = finish_job(user, django_capture_on_commit_callbacks)
    assert job.status == JobStatus.COMPLETED
    assert len(sent) == 1

    assert deliver_until_settled() == ["delivered"]
    (request,) = receiver.wait_for(1)
    assert request.signature_ok
    assert request.headers["content-type"] == "application/json"
    event = request.event
    assert event["type"] == "job.completed"
    assert event["data"]["id"] == str(job.pk)
    assert event["data"]["status"] == "completed"
    assert event["data"]["result"] == job.result
    delivery = WebhookDelivery.objects.get()
    assert request.headers["webhook-id"] == delivery.webhook_id
    assert delivery.status == DeliveryStatus.DELIVERED
    assert [(a.number, a.status_code, a.error) for a in delivery.attempt_log.all()] == [(1, 204, "")]
    # Delivered once: nothing more is due.
    assert due_deliveries() == []


@pytest.mark.django_db
def test_a_receiver_failing_twice_gets_the_same_delivery_a_third_time(
    api, user, receiver, allowed, sent, django_capture_on_commit_callbacks
):
    subscribe(api, receiver)
    receiver.fail_first = 2
    finish_job(user, django_capture_on_commit_callbacks)

    assert deliver_until_settled() == ["retrying", "retrying", "delivered"]
    requests = receiver.wait_for(3)
    assert len(requests) == 3
    assert all(request.signature_ok for request in requests)
    # The same id and body each time, so the receiver can drop duplicates.
    assert len({request.headers["webhook-id"] for request in requests}) == 1
    assert len({request.body for request in requests}) == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 3
    assert [a.status_code for a in delivery.attempt_log.all()] == [500, 500, 204]
    assert "answered 500" in delivery.attempt_log.first().error


@pytest.mark.django_db
def test_retries_stop_after_the_retry_period(api, user, receiver, allowed, sent, django_capture_on_commit_callbacks):
    subscribe(api, receiver)
    receiver.fail_first = 100
    with override_settings(JOBS={**allowed, "WEBHOOK_RETRY_FOR": 0}):
        finish_job(user, django_capture_on_commit_callbacks)
        assert deliver_until_settled() == ["failed"]
    assert WebhookDelivery.objects.get().status == DeliveryStatus.FAILED
    assert len(receiver.wait_for(1)) == 1


@pytest.mark.django_db
def test_a_client_error_is_not_retried(api, user, receiver, allowed, sent, django_capture_on_commit_callbacks):
    subscribe(api, receiver)
    receiver.fail_first, receiver.fail_status = 1, 404
    finish_job(user, django_capture_on_commit_callbacks)
    assert deliver_until_settled() == ["failed"]


@pytest.mark.django_db
def test_an_unreachable_receiver_is_retried(api, user, receiver, allowed, sent, django_capture_on_commit_callbacks):
    subscribe(api, receiver)
    job = finish_job(user, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get(job=job)
    # Point the delivery at a port nobody listens on (allowed, like the receiver's).
    closed = f"127.0.0.1:{_closed_port()}"
    WebhookDelivery.objects.filter(pk=delivery.pk).update(url=f"http://{closed}/hooks")
    with override_settings(JOBS={**allowed, "WEBHOOK_ALLOWED_HOSTS": [closed]}):
        assert deliver(delivery.pk) == "retrying"
    attempt = delivery.attempt_log.get()
    assert attempt.status_code is None
    assert "Connection" in attempt.error


@pytest.mark.django_db
def test_the_signal_is_sent_once_when_a_job_ends(user, django_capture_on_commit_callbacks):
    heard: list[dict[str, Any]] = []

    def listener(sender: Any, **kwargs: Any) -> None:
        heard.append(kwargs)

    job_finished.connect(listener)
    try:
        job = finish_job(user, django_capture_on_commit_callbacks)
        # A second delivery of the same task finds nothing to run: no second signal.
        with django_capture_on_commit_callbacks(execute=True):
            assert run_job(str(job.pk)) == "skipped"
    finally:
        job_finished.disconnect(listener)
    assert [(h["job_id"], h["kind"], h["status"]) for h in heard] == [(job.pk, "tests.noop", "completed")]


@pytest.mark.django_db
def test_cancelled_jobs_are_told_too(api, user, receiver, allowed, sent, django_capture_on_commit_callbacks):
    subscribe(api, receiver)
    job = submit("tests.noop", {}, owner=user)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"/api/jobs/{job.pk}/cancel/").status_code == 200
    deliver_until_settled()
    (request,) = receiver.wait_for(1)
    assert request.event["type"] == "job.cancelled"
    assert request.signature_ok


@pytest.mark.django_db
def test_the_secret_is_shown_once(api, user):
    first = api.post(SECRET_URL)
    assert first.status_code == 201
    secret = first.json()["secret"]
    assert secret.startswith("whsec_")
    assert first["Cache-Control"] == "no-store"
    shown = api.get(ENDPOINT_URL)
    assert shown.status_code == 200
    assert secret not in shown.content.decode()
    assert shown.json()["has_secret"] is True
    rotated = api.post(SECRET_URL).json()["secret"]
    assert rotated != secret


@pytest.mark.django_db
def test_the_admin_shows_attempts_but_never_the_secret(
    api, user, receiver, allowed, sent, django_capture_on_commit_callbacks, admin_client
):
    secret = subscribe(api, receiver)
    receiver.fail_first = 1
    job = finish_job(user, django_capture_on_commit_callbacks)
    deliver_until_settled()
    Job.objects.filter(pk=job.pk).update(options={"ttl": 3600})
    page = admin_client.get(reverse("admin:jobs_job_change", args=[job.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Webhook deliveries" in html
    delivery = WebhookDelivery.objects.get()
    assert delivery.webhook_id in html
    assert str(delivery) not in html  # one row per delivery, no caption repeating it
    assert "HTTP 500" in html and "HTTP 204" in html
    assert "ttl&quot;: 3600" in html  # the job's applied Job-Options
    assert secret not in html
    assert secret.removeprefix("whsec_") not in html
    # Not registered in the admin at all.
    assert admin_client.get("/admin/jobs/webhookendpoint/").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9/x", "https"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://10.1.2.3/x", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[::1]/x", "loopback"),
        ("https://[::ffff:192.168.0.1]/x", "private"),
        ("https://user:pw@93.184.215.14/x", "password"),
        ("ftp://93.184.215.14/x", "https://"),
        ("not a url", "https://"),
    ],
)
def test_internal_destinations_are_refused(api, url, why):
    api.post(SECRET_URL)
    answer = api.put(ENDPOINT_URL, {"url": url}, format="json")
    assert answer.status_code == 400
    assert answer.json()["code"] == "webhook_destination_refused"
    assert why in answer.json()["detail"]
    assert api.get(ENDPOINT_URL).json()["url"] == ""


@pytest.mark.django_db
def test_a_public_https_endpoint_is_accepted_and_cleared(api):
    api.post(SECRET_URL)
    assert api.put(ENDPOINT_URL, {"url": "https://93.184.215.14/hooks"}, format="json").status_code == 200
    assert api.get(ENDPOINT_URL).json()["url"] == "https://93.184.215.14/hooks"
    assert api.put(ENDPOINT_URL, {"url": ""}, format="json").json()["url"] == ""


@pytest.mark.django_db
def test_an_endpoint_needs_a_secret_first(api):
    answer = api.put(ENDPOINT_URL, {"url": "https://93.184.215.14/hooks"}, format="json")
    assert answer.status_code == 400
    assert "/api/webhooks/secret/" in answer.json()["detail"]


@pytest.mark.django_db
def test_a_destination_that_turned_internal_is_refused_at_delivery(
    api, user, receiver, allowed, sent, django_capture_on_commit_callbacks
):
    subscribe(api, receiver)
    finish_job(user, django_capture_on_commit_callbacks)
    # The host is no longer allowed when the attempt comes (as if its DNS now pointed inside).
    with override_settings(JOBS={**allowed, "WEBHOOK_ALLOWED_HOSTS": []}):
        assert deliver_until_settled() == ["failed"]
    assert receiver.received == []
    assert "refused" in WebhookDelivery.objects.get().attempt_log.get().error


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_webhook_ids_are_stable_per_delivery():
    delivery = WebhookDelivery(id=uuid.UUID(int=5))
    assert delivery.webhook_id == delivery.webhook_id == f"msg_{uuid.UUID(int=5).hex}"


@pytest.mark.django_db
def test_deleting_a_job_deletes_its_deliveries(api, user, receiver, allowed, sent, django_capture_on_commit_callbacks):
    subscribe(api, receiver)
    receiver.fail_first = 1
    job = finish_job(user, django_capture_on_commit_callbacks)
    deliver_until_settled()
    assert WebhookDelivery.objects.filter(job=job).exists()
    assert api.delete(f"/api/jobs/{job.pk}/").status_code == 204
    assert not WebhookDelivery.objects.exists()
    assert not WebhookAttempt.objects.exists()


@pytest.mark.django_db
def test_on_postgresql_the_ending_itself_says_whether_there_is_anything_to_deliver(
    api, user, receiver, allowed, sent, django_capture_on_commit_callbacks
):
    if connection.vendor != "postgresql":
        pytest.skip("the finish statement that answers this is PostgreSQL's; elsewhere the receiver asks")
    heard: list[Any] = []

    def listener(sender: Any, **kwargs: Any) -> None:
        heard.append(kwargs["webhooks"])

    job_finished.connect(listener)
    try:
        with CaptureQueriesContext(connection) as queries:
            finish_job(user, django_capture_on_commit_callbacks)
        subscribe(api, receiver)
        finish_job(user, django_capture_on_commit_callbacks)
    finally:
        job_finished.disconnect(listener)
    assert heard == [False, True]
    # Without a destination the ending reads no endpoint and writes no delivery.
    assert not [q["sql"] for q in queries if "webhook" in q["sql"].lower() and "FROM finished" not in q["sql"]]
    assert WebhookDelivery.objects.count() == 1
