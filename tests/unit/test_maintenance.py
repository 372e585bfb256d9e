"""Time to live (expires_at), the TTL schedule registered on migrate, and the bulk operations' batches."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone
from django_q.models import Schedule, Task

from jobs import queue
from jobs.maintenance import (
    jobs_bulk_cancel,
    jobs_bulk_purge,
    jobs_bulk_retry,
    jobs_purge_expired,
    pk_batches,
    purge_expired_task,
)
from jobs.models import Job, JobStatus
from jobs.queue import TTL_SCHEDULE_NAME, TTL_TASK
from jobs.runner import claim, run_job
from jobs.services import job_cancel, job_submit
from purchases.models import Order
from tests.support import handlers

pytestmark = pytest.mark.django_db
S = JobStatus


def ttl_of(job) -> timedelta:
    stored = Job.objects.get(pk=job.pk)
    assert stored.finished_at is not None and stored.expires_at is not None
    return stored.expires_at - stored.finished_at


def finished(make_job, status=S.COMPLETED, *, expires_in: timedelta | None, **fields):
    now = timezone.now()
    expires = None if expires_in is None else now + expires_in
    return make_job(status=status, finished_at=now, expires_at=expires, **fields)


# --- expires_at -----------------------------------------------------------------


def test_a_kinds_own_ttl_wins_over_the_default(user):
    job = job_submit(kind="tests.noop", payload={}, owner=user).job
    with override_settings(JOBS={"DEFAULT_TTL": 3600}):
        assert run_job(str(job.pk)) == S.COMPLETED
    assert ttl_of(job) == timedelta(seconds=handlers.NOOP_TTL)


@pytest.mark.parametrize(("jobs_setting", "expected"), [({}, timedelta(days=7)), ({"DEFAULT_TTL": 3600}, timedelta(hours=1))])
def test_kinds_without_a_ttl_use_the_setting(user, jobs_setting, expected):
    with override_settings(JOBS=jobs_setting):
        done = job_submit(kind="tests.echo", payload={"n": 1}, owner=user).job
        failed = job_submit(kind="tests.fail", payload={}, owner=user).job
        cancelled = job_submit(kind="tests.echo", payload={"n": 2}, owner=user).job
        bulk_cancelled = job_submit(kind="tests.echo", payload={"n": 3}, owner=user).job
        assert run_job(str(done.pk)) == S.COMPLETED
        assert run_job(str(failed.pk)) == S.FAILED
        job_cancel(job=cancelled)
        jobs_bulk_cancel(Job.objects.filter(pk=bulk_cancelled.pk), actor="test")
    assert [ttl_of(job) for job in (done, failed, cancelled, bulk_cancelled)] == [expected] * 4


def test_unfinished_jobs_never_expire(user, make_job):
    pending = job_submit(kind="tests.noop", payload={}, owner=user).job
    processing = job_submit(kind="tests.noop", payload={}, owner=user).job
    claim(processing.pk)
    waiting = job_submit(kind="tests.boom", payload={}, owner=user).job
    assert run_job(str(waiting.pk)) == "retrying"
    retried = finished(make_job, S.FAILED, expires_in=timedelta(days=1))
    jobs_bulk_retry(Job.objects.filter(pk=retried.pk), actor="test")

    rows = Job.objects.filter(pk__in=[pending.pk, processing.pk, waiting.pk, retried.pk])
    assert sorted(rows.values_list("status", "expires_at")) == [(S.PENDING, None)] * 3 + [(S.PROCESSING, None)]


# --- the scheduled purge ----------------------------------------------------------


def make_task(stopped_ago: timedelta) -> Task:
    stopped = timezone.now() - stopped_ago
    return Task.objects.create(
        id=uuid.uuid4().hex, name=f"t-{uuid.uuid4().hex[:8]}", func="math.floor",
        started=stopped - timedelta(seconds=1), stopped=stopped, success=True,
    )  # fmt: skip


def test_purge_expired_task_deletes_expired_finished_jobs_and_old_task_records(make_job):
    gone = [finished(make_job, status, expires_in=-timedelta(seconds=1)) for status in S.terminal()]
    fresh = finished(make_job, expires_in=timedelta(hours=1))
    forever = finished(make_job, expires_in=None)
    past = timezone.now() - timedelta(days=30)
    pending = make_job(expires_at=past)
    processing = make_job(status=S.PROCESSING, started_at=past, expires_at=past)
    make_task(timedelta(days=8))
    recent_task = make_task(timedelta(days=6))

    assert purge_expired_task() == {"jobs": 3, "tombstones": 0, "tasks": 1}

    assert not Job.objects.filter(pk__in=[job.pk for job in gone]).exists()
    assert set(Job.objects.values_list("pk", flat=True)) == {fresh.pk, forever.pk, pending.pk, processing.pk}
    assert list(Task.objects.values_list("pk", flat=True)) == [recent_task.pk]


@override_settings(JOBS={"DEFAULT_TTL": 3600})
def test_task_records_are_pruned_after_the_configured_ttl():
    make_task(timedelta(hours=2))
    kept = make_task(timedelta(minutes=30))
    assert purge_expired_task() == {"jobs": 0, "tombstones": 0, "tasks": 1}
    assert list(Task.objects.values_list("pk", flat=True)) == [kept.pk]


def test_expired_jobs_are_deleted_in_bounded_batches(make_job):
    for _ in range(5):
        finished(make_job, expires_in=-timedelta(minutes=1))
    batches: list[int] = []
    assert jobs_purge_expired(batch_size=2, on_batch=lambda ids: batches.append(len(ids))) == 5
    assert batches == [2, 2, 1]
    assert not Job.objects.exists()


# --- the schedule, registered on migrate ---------------------------------------------


def ttl_schedules():
    return list(Schedule.objects.filter(name=TTL_SCHEDULE_NAME))


def test_migrate_registers_exactly_one_ttl_schedule():
    call_command("migrate", verbosity=0)
    call_command("migrate", verbosity=0)

    [schedule] = ttl_schedules()
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        TTL_TASK, Schedule.MINUTES, 5, -1,
    )  # fmt: skip
    assert TTL_TASK == "jobs.maintenance.purge_expired_task"


def test_migrate_recreates_a_deleted_schedule_and_removes_copies_made_by_hand():
    Schedule.objects.filter(name=TTL_SCHEDULE_NAME).delete()
    call_command("migrate", verbosity=0)
    [original] = ttl_schedules()
    Schedule.objects.create(name=TTL_SCHEDULE_NAME, func="somewhere.else", schedule_type=Schedule.HOURLY)

    call_command("migrate", verbosity=0)

    assert [schedule.pk for schedule in ttl_schedules()] == [original.pk]


def test_migrate_repairs_a_schedule_edited_by_hand():
    Schedule.objects.filter(name=TTL_SCHEDULE_NAME).update(func="somewhere.else", schedule_type=Schedule.DAILY)
    with override_settings(JOBS={"PURGE_EVERY_MINUTES": 10}):
        call_command("migrate", verbosity=0)
    [schedule] = ttl_schedules()
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (TTL_TASK, Schedule.MINUTES, 10)


# --- bulk operations in batches ----------------------------------------------------------


def test_pk_batches_cover_every_key_once_in_order(make_job):
    keys = sorted(make_job().pk for _ in range(7))
    batches = list(pk_batches(Job.objects.all(), 3))
    assert [len(batch) for batch in batches] == [3, 3, 1]
    assert [pk for batch in batches for pk in batch] == keys


@pytest.mark.parametrize(
    ("operation", "status", "after"),
    [
        (lambda qs, **kw: jobs_bulk_retry(qs, actor="t", **kw), S.FAILED, S.PENDING),
        (lambda qs, **kw: jobs_bulk_cancel(qs, actor="t", **kw), S.PENDING, S.CANCELLED),
        (lambda qs, **kw: jobs_bulk_purge(qs, **kw), S.COMPLETED, None),
    ],
)
def test_bulk_operations_work_in_batches_and_count_skips(make_job, operation, status, after):
    targets = [make_job(status=status, finished_at=timezone.now() if status in S.terminal() else None) for _ in range(5)]
    skipped = make_job(status=S.PROCESSING, started_at=timezone.now()) if after != S.CANCELLED else finished(make_job, expires_in=None)
    sizes: list[int] = []

    result = operation(Job.objects.all(), batch_size=2, on_batch=lambda ids: sizes.append(len(ids)))

    assert result.changed == 5 and result.skipped_total == 1
    assert sum(sizes) == 5 and len(sizes) == 3 and max(sizes) <= 2
    remaining = set(Job.objects.filter(pk__in=[job.pk for job in targets]).values_list("status", flat=True))
    assert remaining == ({after} if after else set())
    assert Job.objects.filter(pk=skipped.pk).exists()


def test_purging_a_job_keeps_the_order_that_points_to_it(make_job, user):
    job = finished(make_job, expires_in=None)
    order = Order.objects.create(owner=user, job=job, currency="EUR")
    assert jobs_bulk_purge(Job.objects.all()).changed == 1
    assert Order.objects.get(pk=order.pk).job_id is None


def test_one_failed_enqueue_does_not_strand_the_rest_of_the_batch(
    make_job, monkeypatch, django_capture_on_commit_callbacks
):
    jobs = [finished(make_job, S.FAILED, expires_in=None) for _ in range(3)]
    attempted: list = []

    def flaky_broker(job_id, kind):
        attempted.append(job_id)
        if len(attempted) == 1:
            raise ConnectionError("broker hiccup")

    monkeypatch.setattr(queue, "enqueue", flaky_broker)
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs_bulk_retry(Job.objects.all(), actor="t").changed == 3

    # The first send failed; the other two jobs are pending again and must
    # still reach the queue, or nothing would ever run them.
    assert len(attempted) == 3, f"{3 - len(attempted)} retried jobs were never sent to the queue"
    assert set(attempted) == {job.pk for job in jobs}
