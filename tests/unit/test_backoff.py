"""jobs.runner.backoff_delay: exponential, capped, with equal jitter."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from jobs import runner
from jobs.models import Job
from jobs.runner import backoff_delay


@override_settings(JOBS={"RETRY_BACKOFF_BASE": 2, "RETRY_BACKOFF_MAX": 10})
@pytest.mark.parametrize(
    ("attempt", "full"), [(1, 2), (2, 4), (3, 8), (4, 10), (20, 10)]
)
def test_backoff_grows_exponentially_and_is_capped(attempt, full, monkeypatch):
    monkeypatch.setattr(runner.random, "uniform", lambda low, high: high)
    assert backoff_delay(attempt) == full
    monkeypatch.setattr(runner.random, "uniform", lambda low, high: low)
    assert backoff_delay(attempt) == full / 2


@override_settings(JOBS={"RETRY_BACKOFF_BASE": 3, "RETRY_BACKOFF_MAX": 50})
def test_backoff_jitter_stays_between_half_and_the_full_delay():
    delays = [backoff_delay(3) for _ in range(200)]
    assert all(6 <= delay <= 12 for delay in delays)
    assert len(set(delays)) > 1


def test_the_defaults_start_at_two_seconds_and_stop_at_five_minutes():
    assert 1 <= backoff_delay(1) <= 2
    assert 150 <= backoff_delay(50) <= 300


@pytest.mark.django_db
@override_settings(JOBS={"RETRY_BACKOFF_BASE": 100, "RETRY_BACKOFF_MAX": 1000})
def test_a_retried_job_waits_for_its_backoff(make_job):
    job = make_job("tests.boom")
    before = timezone.now()

    assert runner.run_job(str(job.pk)) == "retrying"

    after = timezone.now()
    available_at = Job.objects.get(pk=job.pk).available_at
    assert before + timedelta(seconds=50) <= available_at <= after + timedelta(seconds=100)
