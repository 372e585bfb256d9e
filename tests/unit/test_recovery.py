"""Leases, the reaper, lost messages and time limits, without real processes."""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from jobs.exceptions import JobTimeout
from jobs.models import Job, JobEvent, JobStatus
from jobs.recovery import reap_task, recover_expired_leases, resend_lost_pending
from jobs.runner import run_job, time_limit
from tests.support import handlers

pytestmark = pytest.mark.django_db


def processing(make_job, *, lease_ago: float, attempts: int = 1, **fields):
    now = timezone.now()
    return make_job(
        status=JobStatus.PROCESSING,
        attempts=attempts,
        started_at=now - timedelta(seconds=600),
        lease_expires_at=now - timedelta(seconds=lease_ago),
        **fields,
    )


def test_a_claim_takes_a_lease_of_timeout_plus_grace(make_job, reload, monkeypatch):
    seen = {}
    monkeypatch.setattr(
        handlers,
        "CALLBACK",
        lambda ctx, payload: seen.setdefault(
            "lease", Job.objects.get(pk=ctx.job_id).lease_expires_at - timezone.now()
        ),
    )
    job = make_job("tests.call")
    with override_settings(JOBS={"LEASE_GRACE": 7, "KILL_MARGIN": 1}):
        assert run_job(str(job.pk)) == JobStatus.COMPLETED
    assert timedelta(seconds=10) < seen["lease"] <= timedelta(seconds=12)  # 5 s timeout + 7 s
    assert reload(job).lease_expires_at is None


def test_progress_renews_the_lease(make_job, monkeypatch):
    leases = []

    def report(ctx, payload):
        Job.objects.filter(pk=ctx.job_id).update(lease_expires_at=timezone.now())
        ctx.progress(50, "half way")
        leases.append(Job.objects.get(pk=ctx.job_id).lease_expires_at)

    monkeypatch.setattr(handlers, "CALLBACK", report)
    job = make_job("tests.call")
    assert run_job(str(job.pk)) == JobStatus.COMPLETED
    assert leases[0] > timezone.now() + timedelta(seconds=20)


def test_the_reaper_queues_again_a_job_whose_lease_ran_out(make_job, reload, fake_queue):
    lost = processing(make_job, lease_ago=5)
    alive = processing(make_job, lease_ago=-60)

    assert recover_expired_leases() == {"requeued": 1, "failed": 0}

    assert reload(lost).status == JobStatus.PENDING
    assert reload(alive).status == JobStatus.PROCESSING
    assert fake_queue.job_ids == [str(lost.pk)]
    event = JobEvent.objects.get(job=lost)
    assert (event.type, event.actor) == ("attempt_failed", "reaper")


def test_the_reaper_fails_a_job_lost_on_its_last_attempt(make_job, reload, fake_queue):
    job = processing(make_job, lease_ago=5, attempts=3, max_attempts=3)

    assert recover_expired_leases() == {"requeued": 0, "failed": 1}

    stored = reload(job)
    assert (stored.status, stored.error["code"]) == (JobStatus.FAILED, "worker_lost")
    assert stored.finished_at and stored.expires_at
    assert fake_queue.job_ids == []


def test_a_redelivered_task_takes_over_an_expired_lease(make_job, reload):
    job = processing(make_job, lease_ago=5, attempts=1)
    assert run_job(str(job.pk)) == JobStatus.COMPLETED
    assert reload(job).attempts == 2


def test_a_redelivered_task_leaves_a_live_lease_alone(make_job, reload):
    job = processing(make_job, lease_ago=-60, attempts=1)
    assert run_job(str(job.pk)) == "skipped"
    assert reload(job).status == JobStatus.PROCESSING


def test_a_redelivery_after_the_last_attempt_fails_worker_lost(make_job, reload):
    job = processing(make_job, lease_ago=5, attempts=3, max_attempts=3)
    assert run_job(str(job.pk)) == JobStatus.FAILED
    assert reload(job).error["code"] == "worker_lost"


def test_lost_pending_messages_are_sent_again(make_job, reload, fake_queue):
    now = timezone.now()
    lost = make_job(enqueued_at=now - timedelta(seconds=400))
    recent = make_job(enqueued_at=now - timedelta(seconds=10))
    waiting = make_job(enqueued_at=now + timedelta(seconds=60), available_at=now + timedelta(seconds=60))
    never_sent = make_job(created_at=now - timedelta(seconds=400))

    with override_settings(JOBS={"LOST_AFTER": 300}):
        assert resend_lost_pending() == 2

    assert sorted(fake_queue.job_ids) == sorted([str(lost.pk), str(never_sent.pk)])
    assert reload(recent).status == reload(waiting).status == JobStatus.PENDING


def test_the_reaper_task_books_its_next_run(make_job):
    from django_q.models import Schedule

    Schedule.objects.filter(name="jobs.reap").update(next_run=timezone.now() + timedelta(hours=1))
    with override_settings(JOBS={"REAPER_INTERVAL": 30}):
        reap_task()
    next_run = Schedule.objects.get(name="jobs.reap").next_run
    assert next_run <= timezone.now() + timedelta(seconds=31)


def test_a_handler_over_its_timeout_fails_with_timeout(make_job, reload):
    from jobs.registry import job as register

    register("tests.overrun", timeout=1)(_sleep_five_seconds)
    job = make_job("tests.overrun")
    started = time.monotonic()
    assert run_job(str(job.pk)) == JobStatus.FAILED
    assert time.monotonic() - started < 4
    assert reload(job).error["code"] == "timeout"


def test_time_limit_raises_and_then_disarms():
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(JobTimeout):
        with time_limit(1):
            time.sleep(3)  # the overrunning work itself: the alarm cuts it short after 1 s
    with time_limit(1):
        pass
    # The alarm was cancelled and the handler put back: nothing can fire after
    # the block (read from the timer, rather than sleeping past where it would).
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before


def _sleep_five_seconds(ctx, payload):
    time.sleep(5)  # a handler overrunning its 1 s timeout: the scenario, cut short by the alarm


def test_the_lease_always_outlasts_django_q2s_kill():
    from jobs.registry import get_kind

    with override_settings(JOBS={"LEASE_GRACE": 2, "KILL_MARGIN": 10}):
        # 5 s timeout, then django-q2 kills at 5 + 10 + its 3 s buffer.
        assert get_kind("tests.noop").lease == timedelta(seconds=20)
