"""JobContext as handlers see it: progress, clamping, cancellation, visibility."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from jobs.models import Job, JobStatus
from jobs.runner import run_job
from jobs.services import job_cancel
from tests.support import handlers


def _row(job_id) -> dict:
    return Job.objects.filter(pk=job_id).values(
        "status", "cancel_requested", "progress_percentage", "progress_message"
    ).get()


@pytest.mark.django_db
def test_progress_clamps_the_percentage_to_0_100(make_job):
    job = make_job("tests.progress", payload={"steps": [-5, 150, 42, 100.7]})

    assert run_job(str(job.pk)) == JobStatus.COMPLETED

    assert Job.objects.get(pk=job.pk).result == [0, 100, 42, 100]


@pytest.mark.django_db
def test_progress_stores_the_message_truncated(make_job, monkeypatch):
    seen = {}

    def callback(ctx, payload):
        ctx.progress(30, "x" * 300)
        seen.update(_row(ctx.job_id))

    monkeypatch.setattr(handlers, "CALLBACK", callback)
    run_job(str(make_job("tests.call").pk))

    assert seen["progress_percentage"] == 30
    assert seen["progress_message"] == "x" * 255


@pytest.mark.django_db
def test_the_context_knows_the_attempt(make_job, monkeypatch):
    monkeypatch.setattr(
        handlers,
        "CALLBACK",
        lambda ctx, payload: [ctx.attempt, ctx.max_attempts, ctx.is_last_attempt, str(ctx.job_id)],
    )
    first = make_job("tests.call", max_attempts=3)
    last = make_job("tests.call", max_attempts=3, attempts=2)

    run_job(str(first.pk))
    run_job(str(last.pk))

    assert Job.objects.get(pk=first.pk).result == [1, 3, False, str(first.pk)]
    assert Job.objects.get(pk=last.pk).result == [3, 3, True, str(last.pk)]


@pytest.mark.django_db
def test_a_cancel_requested_while_processing_stops_the_job_at_its_next_progress(
    make_job, monkeypatch
):
    trace = []

    def callback(ctx, payload):
        ctx.progress(10, "started")
        job_cancel(job=Job.objects.get(pk=ctx.job_id))
        trace.append(_row(ctx.job_id))
        ctx.progress(50, "halfway")
        trace.append("not reached")
        return "done"

    monkeypatch.setattr(handlers, "CALLBACK", callback)
    job = make_job("tests.call")

    assert run_job(str(job.pk)) == JobStatus.CANCELLED

    assert trace == [
        {
            "status": JobStatus.PROCESSING,
            "cancel_requested": True,
            "progress_percentage": 10,
            "progress_message": "started",
        }
    ]
    stored = Job.objects.get(pk=job.pk)
    assert stored.status == JobStatus.CANCELLED
    assert stored.error["code"] == "cancelled"
    assert stored.result is None
    assert stored.progress_percentage == 10
    assert stored.finished_at is not None and stored.expires_at is not None


@pytest.mark.django_db
def test_progress_not_cancellable_does_not_raise_after_a_cancel(make_job, monkeypatch):
    trace = []

    def callback(ctx, payload):
        job_cancel(job=Job.objects.get(pk=ctx.job_id))
        ctx.progress(70, "money taken", cancellable=False)
        trace.append(_row(ctx.job_id))
        return "finished anyway"

    monkeypatch.setattr(handlers, "CALLBACK", callback)
    job = make_job("tests.call")

    assert run_job(str(job.pk)) == JobStatus.COMPLETED

    assert trace[0]["progress_percentage"] == 70
    assert trace[0]["progress_message"] == "money taken"
    stored = Job.objects.get(pk=job.pk)
    assert (stored.status, stored.result, stored.error) == (
        JobStatus.COMPLETED,
        "finished anyway",
        None,
    )


@pytest.mark.django_db
def test_a_cancelled_pending_job_is_never_run(make_job, monkeypatch):
    ran = []
    monkeypatch.setattr(handlers, "CALLBACK", lambda ctx, payload: ran.append(ctx.job_id))
    job = make_job("tests.call")
    job_cancel(job=job)

    assert run_job(str(job.pk)) == "skipped"

    assert ran == []
    assert Job.objects.get(pk=job.pk).status == JobStatus.CANCELLED


@pytest.mark.django_db(transaction=True)
def test_progress_is_committed_at_once_for_pollers(make_job, monkeypatch):
    """A poller on another connection sees progress while the handler still runs."""
    seen = []
    errors = []

    def poll(job_id):
        try:
            seen.append(_row(job_id))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    def callback(ctx, payload):
        ctx.progress(55, "half way there")
        poller = threading.Thread(target=poll, args=(ctx.job_id,))
        poller.start()
        poller.join()
        return "ok"

    monkeypatch.setattr(handlers, "CALLBACK", callback)
    job = make_job("tests.call")

    assert run_job(str(job.pk)) == JobStatus.COMPLETED

    assert errors == []
    assert seen == [
        {
            "status": JobStatus.PROCESSING,
            "cancel_requested": False,
            "progress_percentage": 55,
            "progress_message": "half way there",
        }
    ]
