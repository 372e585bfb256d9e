"""The job metrics read from the table, and /metrics: its token, its 404s, its HTTP counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from prometheus_client import CollectorRegistry

from jobs import queue
from jobs.metrics import RECENT, JobCollector
from jobs.models import Job, JobStatus
from project.metrics import REQUESTS

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-0123456789"


@pytest.fixture(autouse=True)
def no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit tests have no broker to ask for its depth."""
    monkeypatch.setattr(queue, "queue_depth", lambda: 7)


def sample(name: str, **labels: str) -> float | None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobCollector())
    return registry.get_sample_value(name, labels)


def job(status: str, kind: str = "m.report", **fields: Any) -> Job:
    now = timezone.now()
    values: dict[str, Any] = {"kind": kind, "status": status, "created_at": now, "payload": {}}
    if status in JobStatus.terminal():
        values.update(started_at=now, finished_at=now)
    values.update(fields)
    # A row written once became pending when it was created (its wait counts from updated_at).
    values.setdefault("updated_at", values["created_at"])
    return Job.objects.create(**values)


def test_recently_finished_jobs_count_by_kind_and_outcome():
    for _ in range(3):
        job(JobStatus.COMPLETED)
    job(JobStatus.FAILED)
    job(JobStatus.CANCELLED, kind="m.other", started_at=None)
    job(JobStatus.PENDING)

    assert sample("jobs_finished_recent", kind="m.report", outcome="completed") == 3
    assert sample("jobs_finished_recent", kind="m.report", outcome="failed") == 1
    assert sample("jobs_finished_recent", kind="m.report", outcome="cancelled") == 0
    assert sample("jobs_finished_recent", kind="m.other", outcome="cancelled") == 1


def test_rates_and_durations_are_of_recently_finished_jobs_only():
    now = timezone.now()
    long_ago = now - timedelta(seconds=RECENT + 60)
    job(JobStatus.FAILED, created_at=long_ago, started_at=long_ago, finished_at=long_ago)
    job(JobStatus.FAILED)

    assert sample("jobs_finished_recent", kind="m.report", outcome="failed") == 1
    assert sample("jobs_run_seconds_bucket", kind="m.report", le="+Inf") == 1
    assert sample("jobs_wait_seconds_gcount", kind="m.report") == 1


def test_wait_and_run_histograms():
    now = timezone.now()
    for wait, run in ((0.2, 1.0), (3.0, 45.0), (4000.0, 0.05)):
        started = now - timedelta(seconds=run)
        job(
            JobStatus.COMPLETED,
            created_at=started - timedelta(seconds=wait), started_at=started, finished_at=now,
        )  # fmt: skip
    # Cancelled before it started: no wait or run time to count.
    job(JobStatus.CANCELLED, started_at=None)

    assert sample("jobs_wait_seconds_bucket", kind="m.report", le="0.25") == 1
    assert sample("jobs_wait_seconds_bucket", kind="m.report", le="5.0") == 2
    assert sample("jobs_wait_seconds_bucket", kind="m.report", le="3600.0") == 2
    assert sample("jobs_wait_seconds_bucket", kind="m.report", le="+Inf") == 3
    assert sample("jobs_wait_seconds_gcount", kind="m.report") == 3
    assert sample("jobs_wait_seconds_gsum", kind="m.report") == pytest.approx(4003.2, abs=0.01)
    assert sample("jobs_run_seconds_bucket", kind="m.report", le="0.1") == 1
    assert sample("jobs_run_seconds_bucket", kind="m.report", le="1.0") == 2
    assert sample("jobs_run_seconds_bucket", kind="m.report", le="60.0") == 3
    assert sample("jobs_run_seconds_gsum", kind="m.report") == pytest.approx(46.05, abs=0.01)


def test_active_gauges():
    now = timezone.now()
    job(JobStatus.PENDING, created_at=now - timedelta(seconds=120))
    job(JobStatus.PENDING, created_at=now - timedelta(seconds=10))
    # Waiting out a retry's backoff: pending but not due, so neither in the depth nor the age.
    job(JobStatus.PENDING, created_at=now - timedelta(hours=1), available_at=now + timedelta(minutes=1))
    job(JobStatus.PROCESSING, started_at=now, lease_expires_at=now + timedelta(minutes=1))
    job(JobStatus.PROCESSING, started_at=now, lease_expires_at=now - timedelta(seconds=1))

    assert sample("jobs_pending", kind="m.report") == 3
    assert sample("jobs_queue_depth", kind="m.report") == 2
    assert sample("jobs_processing", kind="m.report") == 2
    assert sample("jobs_expired_leases", kind="m.report") == 1
    assert 120 <= sample("jobs_oldest_pending_age_seconds", kind="m.report") < 150
    assert sample("jobs_broker_queue_depth") == 7


def test_a_job_retried_by_staff_waits_from_its_retry():
    now = timezone.now()
    job(JobStatus.PENDING, created_at=now - timedelta(hours=1), updated_at=now - timedelta(seconds=20))

    assert 20 <= sample("jobs_oldest_pending_age_seconds", kind="m.report") < 50


def test_a_retried_job_waits_from_when_it_became_due():
    now = timezone.now()
    job(JobStatus.PENDING, created_at=now - timedelta(hours=1), available_at=now - timedelta(seconds=30))

    assert 30 <= sample("jobs_oldest_pending_age_seconds", kind="m.report") < 60


def test_registered_kinds_report_zeros_when_there_are_no_jobs():
    assert sample("jobs_pending", kind="purchases.execute") == 0
    assert sample("jobs_oldest_pending_age_seconds", kind="purchases.execute") == 0
    assert sample("jobs_finished_recent", kind="purchases.execute", outcome="failed") == 0


@pytest.mark.parametrize(
    "headers",
    [{}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": f"Token {TOKEN}"}, {"HTTP_AUTHORIZATION": TOKEN}],
)
def test_a_scrape_without_the_token_is_a_404(client, headers):
    with override_settings(METRICS_TOKEN=TOKEN):
        assert client.get("/metrics", **headers).status_code == 404


def test_every_scrape_is_a_404_while_no_token_is_set(client):
    with override_settings(METRICS_TOKEN=""):
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer").status_code == 404


def test_a_scrape_with_the_token_gets_the_metrics(client):
    job(JobStatus.FAILED)
    with override_settings(METRICS_TOKEN=TOKEN):
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    assert 'jobs_finished_recent{kind="m.report",outcome="failed"} 1.0' in text
    assert "process_cpu_seconds_total" in text
    assert "http_requests_total" in text


@pytest.mark.parametrize(("allowed", "status"), [(["127.0.0.1"], 200), (["10.0.0.0/8"], 404), (["::1", "127.0.0.0/8"], 200)])
def test_allowed_addresses(client, allowed, status):
    with override_settings(METRICS_TOKEN=TOKEN, METRICS_ALLOWED_ADDRESSES=allowed):
        assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == status


def test_requests_are_counted_by_view_and_status(client):
    before = REQUESTS.labels("GET", "api-docs", "200")._value.get()
    unmatched = REQUESTS.labels("GET", "<unmatched>", "404")._value.get()
    client.get("/api/docs/")
    client.get("/no/such/page/")
    assert REQUESTS.labels("GET", "api-docs", "200")._value.get() == before + 1
    assert REQUESTS.labels("GET", "<unmatched>", "404")._value.get() == unmatched + 1
