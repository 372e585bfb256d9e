"""jobs.runner: claiming, outcomes, retries with backoff, and stale attempts."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db.models import F
from django.test import override_settings
from django.utils import timezone

from jobs import runner
from jobs.models import Job, JobStatus
from jobs.runner import claim, run_job
from tests.support import handlers


def row_snapshot(job: Job) -> dict:
    return Job.objects.filter(pk=job.pk).values().get()


# --- Claiming -------------------------------------------------------------


@pytest.mark.django_db
def test_claim_moves_pending_to_processing_and_counts_the_attempt(make_job):
    job = make_job()

    claimed = claim(job.pk)

    assert claimed is not None
    stored = Job.objects.get(pk=job.pk)
    assert (stored.status, stored.attempts) == (JobStatus.PROCESSING, 1)
    assert stored.started_at is not None
    assert stored.worker == runner.worker_name()
    assert claimed.attempts == 1


@pytest.mark.django_db
def test_duplicate_delivery_of_a_finished_job_is_skipped_and_changes_nothing(make_job):
    job = make_job()
    assert run_job(str(job.pk)) == JobStatus.COMPLETED
    before = row_snapshot(job)

    assert run_job(str(job.pk)) == "skipped"

    assert row_snapshot(job) == before


@pytest.mark.django_db
def test_duplicate_delivery_while_processing_is_skipped(make_job):
    job = make_job()
    claim(job.pk)
    before = row_snapshot(job)

    assert run_job(job.pk) == "skipped"

    assert row_snapshot(job) == before
    assert before["attempts"] == 1


@pytest.mark.django_db
def test_a_job_not_available_yet_is_not_claimed(make_job):
    job = make_job(available_at=timezone.now() + timedelta(minutes=5))

    assert run_job(str(job.pk)) == "skipped"

    stored = Job.objects.get(pk=job.pk)
    assert (stored.status, stored.attempts, stored.started_at) == (JobStatus.PENDING, 0, None)


@pytest.mark.django_db
def test_a_job_whose_backoff_has_passed_is_claimed(make_job):
    job = make_job(available_at=timezone.now() - timedelta(seconds=1))

    assert run_job(str(job.pk)) == JobStatus.COMPLETED


@pytest.mark.django_db
@pytest.mark.parametrize("job_id", ["not-a-uuid", "", "1234", None])
def test_a_malformed_id_is_reported_and_ignored(job_id, make_job):
    job = make_job()

    assert run_job(job_id) == "malformed"

    assert Job.objects.get(pk=job.pk).status == JobStatus.PENDING


@pytest.mark.django_db
def test_an_id_without_a_row_is_skipped():
    assert run_job(str(uuid.uuid4())) == "skipped"


# --- Success --------------------------------------------------------------


@pytest.mark.django_db
def test_success_stores_the_json_round_tripped_result(make_job):
    job = make_job("tests.rich")

    assert run_job(str(job.pk)) == JobStatus.COMPLETED

    stored = Job.objects.get(pk=job.pk)
    assert stored.status == JobStatus.COMPLETED
    assert stored.result == {
        "when": "2024-01-02T03:04:05Z",
        "amount": "1.50",
        "id": str(handlers.RICH_UUID),
        "pair": [1, 2],
    }
    assert stored.error is None
    assert stored.progress_percentage == 100
    assert stored.finished_at is not None
    assert stored.finished_at >= stored.started_at


@pytest.mark.django_db
def test_a_finished_job_expires_after_its_kinds_ttl(make_job):
    job = make_job("tests.noop", payload={"a": 1})

    run_job(str(job.pk))

    stored = Job.objects.get(pk=job.pk)
    assert stored.result == {"echo": {"a": 1}, "attempt": 1}
    assert stored.expires_at == stored.finished_at + timedelta(seconds=handlers.NOOP_TTL)


@pytest.mark.django_db
@override_settings(JOBS={"DEFAULT_TTL": 123})
def test_a_kind_without_ttl_uses_the_settings_default(make_job):
    job = make_job("tests.rich")

    run_job(str(job.pk))

    stored = Job.objects.get(pk=job.pk)
    assert stored.expires_at == stored.finished_at + timedelta(seconds=123)


# --- Failures -------------------------------------------------------------


@pytest.mark.django_db
def test_job_error_fails_at_once_without_retry(make_job, fake_queue):
    job = make_job("tests.fail")

    assert run_job(str(job.pk)) == JobStatus.FAILED

    stored = Job.objects.get(pk=job.pk)
    assert stored.status == JobStatus.FAILED
    assert stored.error == {"code": "out_of_luck", "message": "No luck today."}
    assert stored.attempts == 1
    assert stored.result is None
    assert stored.finished_at is not None and stored.expires_at is not None
    assert fake_queue.scheduled == []
    assert run_job(str(job.pk)) == "skipped"


@pytest.mark.django_db
def test_an_unexpected_exception_puts_the_job_back_with_backoff(make_job, fake_queue):
    job = make_job("tests.boom")
    before = timezone.now()

    assert run_job(str(job.pk)) == "retrying"

    stored = Job.objects.get(pk=job.pk)
    assert (stored.status, stored.attempts) == (JobStatus.PENDING, 1)
    assert stored.available_at > before
    assert "RuntimeError: kaboom: secret internals" in stored.traceback
    assert stored.error is None
    assert stored.finished_at is None
    assert fake_queue.scheduled == [(job.pk, "tests.boom", stored.available_at)]
    # Redelivered before the backoff has passed, it is not run.
    assert run_job(str(job.pk)) == "skipped"


@pytest.mark.django_db
def test_after_max_attempts_the_job_fails_with_a_generic_error(make_job, fake_queue):
    job = make_job("tests.boom")
    outcomes = []
    for _ in range(handlers.BOOM_MAX_ATTEMPTS):
        Job.objects.filter(pk=job.pk).update(available_at=None)
        outcomes.append(run_job(str(job.pk)))

    assert outcomes == ["retrying"] * (handlers.BOOM_MAX_ATTEMPTS - 1) + [JobStatus.FAILED]
    stored = Job.objects.get(pk=job.pk)
    assert stored.status == JobStatus.FAILED
    assert stored.attempts == handlers.BOOM_MAX_ATTEMPTS
    assert stored.error["code"] == "internal_error"
    assert "kaboom" not in stored.error["message"]
    assert "Traceback" not in stored.error["message"]
    assert "RuntimeError: kaboom" in stored.traceback
    assert stored.expires_at is not None
    assert len(fake_queue.scheduled) == handlers.BOOM_MAX_ATTEMPTS - 1
    assert run_job(str(job.pk)) == "skipped"


@pytest.mark.django_db
def test_an_unknown_kind_fails_the_job(make_job):
    job = make_job("tests.no_such_kind")

    assert run_job(str(job.pk)) == JobStatus.FAILED

    stored = Job.objects.get(pk=job.pk)
    assert stored.status == JobStatus.FAILED
    assert stored.error["code"] == "unknown_kind"
    assert stored.finished_at is not None and stored.expires_at is not None


# --- Stale attempts -------------------------------------------------------


def _hand_the_row_over(ctx, payload):
    """What a reaper plus a newer attempt do to the row while this one still runs."""
    Job.objects.filter(pk=ctx.job_id).update(attempts=F("attempts") + 1)
    if payload.get("raise"):
        raise RuntimeError("stale attempt crashed")
    return {"stale": True}


@pytest.mark.django_db
@pytest.mark.parametrize("payload", [{}, {"raise": True}], ids=["returns", "raises"])
def test_a_stale_attempt_cannot_overwrite_a_row_that_changed_hands(
    payload, make_job, monkeypatch, fake_queue
):
    monkeypatch.setattr(handlers, "CALLBACK", _hand_the_row_over)
    job = make_job("tests.call", payload=payload)

    assert run_job(str(job.pk)) == "lost"

    stored = Job.objects.get(pk=job.pk)
    assert (stored.status, stored.attempts) == (JobStatus.PROCESSING, 2)
    assert stored.result is None and stored.error is None
    assert stored.finished_at is None
    assert stored.traceback == ""
    assert fake_queue.scheduled == []
