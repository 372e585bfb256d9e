"""Every accepted job ends: cancels that lose their worker, hooks that settle a run, unknown kinds.

Issue 11, defects 1, 5, 8 and 14; without real processes (tests/faults has those).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import Completed, queue
from jobs.models import Job, JobEvent, JobStatus
from jobs.recovery import SCHEDULER_SLACK, reap_task
from jobs.registry import job as register
from jobs.runner import run_job
from jobs.services import job_cancel, job_submit
from purchases.models import Order, OrderStatus, PaymentCharge, Product
from tests.support import handlers

pytestmark = pytest.mark.django_db

HOOK_CALLS: list[tuple[str, str]] = []
HOOK_ANSWER: list[Completed | None] = [None]


def _record_hook(job_id, status):
    HOOK_CALLS.append((str(job_id), status))
    return HOOK_ANSWER[0]


register("tests.hooked", timeout=5, on_abandon=_record_hook)(lambda ctx, payload: handlers.CALLBACK(ctx, payload))


@pytest.fixture(autouse=True)
def fresh_hook():
    HOOK_CALLS.clear()
    HOOK_ANSWER[0] = None
    yield
    HOOK_CALLS.clear()


def lost_worker(make_job, *, attempts: int = 1, **fields) -> Job:
    """A processing job whose worker vanished: its lease ran out a minute ago."""
    now = timezone.now()
    return make_job(
        kind="tests.hooked",
        status=JobStatus.PROCESSING,
        attempts=attempts,
        started_at=now - timedelta(minutes=5),
        lease_expires_at=now - timedelta(minutes=1),
        worker="gone:1",
        **fields,
    )


# --- Defect 1: a cancelled job that loses its worker ends --------------------------------


def test_a_cancel_requested_job_whose_worker_died_is_cancelled_by_the_reaper(make_job, reload):
    job = lost_worker(make_job, cancel_requested=True)

    reap_task()

    job = reload(job)
    assert job.status == JobStatus.CANCELLED
    assert job.error["code"] == "cancelled"
    assert job.finished_at is not None
    assert HOOK_CALLS == [(str(job.pk), JobStatus.CANCELLED)]


def test_the_hook_of_a_lost_cancelled_job_runs_once_however_often_the_reaper_runs(make_job):
    job = lost_worker(make_job, cancel_requested=True)

    for _ in range(3):
        reap_task()
    # A late redelivery of its message finds nothing to claim.
    assert run_job(str(job.pk), "tests.hooked") == "skipped"

    assert HOOK_CALLS == [(str(job.pk), JobStatus.CANCELLED)]


def test_a_worker_never_takes_over_a_cancel_requested_job_with_an_expired_lease(make_job, reload, monkeypatch):
    ran = []
    monkeypatch.setattr(handlers, "CALLBACK", lambda ctx, payload: ran.append(ctx.job_id))
    job = lost_worker(make_job, cancel_requested=True)

    # Its redelivered message ends it instead of running it.
    assert run_job(str(job.pk), "tests.hooked") == JobStatus.CANCELLED

    assert ran == []
    assert reload(job).status == JobStatus.CANCELLED
    assert HOOK_CALLS == [(str(job.pk), JobStatus.CANCELLED)]


def test_a_pending_job_left_with_a_cancel_request_is_cancelled_by_the_reaper(make_job, reload):
    # What the reaper of an earlier version left behind: no worker may claim it.
    job = make_job(kind="tests.hooked", attempts=1, cancel_requested=True)

    reap_task()

    assert reload(job).status == JobStatus.CANCELLED
    assert HOOK_CALLS == [(str(job.pk), JobStatus.CANCELLED)]


def test_an_unexpected_error_after_a_cancel_request_cancels_instead_of_retrying(make_job, reload, monkeypatch):
    job = make_job(kind="tests.hooked")

    def cancel_then_crash(ctx, payload):
        job_cancel(job=Job.objects.get(pk=ctx.job_id))
        raise RuntimeError("crashed while being cancelled")

    monkeypatch.setattr(handlers, "CALLBACK", cancel_then_crash)

    assert run_job(str(job.pk), "tests.hooked") == JobStatus.CANCELLED

    job = reload(job)
    assert (job.status, job.cancel_requested) == (JobStatus.CANCELLED, True)
    assert HOOK_CALLS == [(str(job.pk), JobStatus.CANCELLED)]


# --- Defect 5: the hook decides whether the work was done -----------------------------------


def test_a_hook_that_finds_the_work_done_completes_the_job_instead_of_failing_it(make_job, reload):
    HOOK_ANSWER[0] = Completed({"order_id": 7})
    job = lost_worker(make_job, attempts=3, max_attempts=3)

    reap_task()

    job = reload(job)
    assert (job.status, job.result, job.error) == (JobStatus.COMPLETED, {"order_id": 7}, None)
    assert HOOK_CALLS == [(str(job.pk), JobStatus.FAILED)]
    last = JobEvent.objects.filter(job=job).order_by("at", "pk").last()
    assert last.type == JobStatus.COMPLETED and "on_abandon" in last.message


def test_a_paid_purchase_whose_last_worker_died_completes_with_its_order(user, make_product, reload):
    product = Product.objects.get(pk=make_product(stock=5).pk)
    job = job_submit(
        kind="purchases.execute",
        payload={"goods": [{"product_id": product.pk, "quantity": 2}]},
        owner=user,
    ).job
    assert run_job(str(job.pk)) == JobStatus.COMPLETED
    # The worker of the last attempt confirmed the order, then died before
    # recording the outcome: the row still says processing.
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.PROCESSING,
        attempts=3,
        max_attempts=3,
        result=None,
        finished_at=None,
        lease_expires_at=now - timedelta(minutes=1),
    )

    reap_task()

    job = reload(job)
    order = Order.objects.get(job_id=job.pk)
    assert job.status == JobStatus.COMPLETED
    assert job.result["order_id"] == order.pk
    assert order.status == OrderStatus.PAID
    assert PaymentCharge.objects.get().refunded is False
    assert Product.objects.get(pk=product.pk).stock == 3


def test_a_reserved_purchase_whose_last_worker_died_is_refunded_and_released(user, make_product, reload):
    product = make_product(stock=5)
    job = job_submit(
        kind="purchases.execute",
        payload={"goods": [{"product_id": product.pk, "quantity": 2}]},
        owner=user,
    ).job
    from purchases.services import order_reserve

    order_reserve(job_id=job.pk, owner_id=user.pk, goods=[{"product_id": product.pk, "quantity": 2}])
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.PROCESSING,
        attempts=3,
        max_attempts=3,
        lease_expires_at=timezone.now() - timedelta(minutes=1),
    )

    reap_task()

    assert reload(job).status == JobStatus.FAILED
    assert reload(job).error["code"] == "worker_lost"
    assert Order.objects.get(job_id=job.pk).status == OrderStatus.RELEASED
    assert Product.objects.get(pk=product.pk).stock == 5


# --- Defect 8: a job of a kind that no longer exists ends -----------------------------------


@pytest.mark.real_queue
def test_a_job_of_an_unknown_kind_is_sent_and_fails_with_unknown_kind(make_job, reload):
    job = make_job(kind="gone.kind", enqueued_at=timezone.now() - timedelta(hours=1))

    # Sending it (the reaper's resend) must not raise, or it stays pending for ever.
    queue.enqueue(job.pk, "gone.kind")
    outcome = run_job(str(job.pk), "gone.kind")

    job = reload(job)
    assert outcome == JobStatus.FAILED
    assert (job.status, job.error["code"]) == (JobStatus.FAILED, "unknown_kind")


# --- Defect 14: the reaper runs every interval, not every other scheduler look --------------


def test_the_reaper_books_its_next_run_before_the_scheduler_look_one_interval_later(settings):
    from django_q.models import Schedule

    from jobs.conf import jobs_settings

    Schedule.objects.update_or_create(
        name=queue.REAPER_SCHEDULE_NAME,
        defaults={"func": queue.REAPER_TASK, "schedule_type": Schedule.MINUTES, "minutes": 1,
                  "next_run": timezone.now() + timedelta(minutes=1)},
    )  # fmt: skip
    before = timezone.now()

    reap_task()

    next_run = Schedule.objects.get(name=queue.REAPER_SCHEDULE_NAME).next_run
    interval = timedelta(seconds=jobs_settings.REAPER_INTERVAL)
    # django-q2 looks about every 30 s: a run booked at exactly one interval
    # after this one falls just behind that look and waits for the next.
    assert next_run <= before + interval - timedelta(seconds=SCHEDULER_SLACK) + timedelta(seconds=1)
    assert next_run > before


def test_staff_cancelling_a_pending_job_whose_earlier_run_was_paid_completes_it(user, make_product, reload):
    from jobs.maintenance import jobs_bulk_cancel

    product = make_product(stock=5)
    job = job_submit(
        kind="purchases.execute",
        payload={"goods": [{"product_id": product.pk, "quantity": 1}]},
        owner=user,
    ).job
    assert run_job(str(job.pk)) == JobStatus.COMPLETED
    # Its worker died before recording the outcome and the reaper queued it again.
    Job.objects.filter(pk=job.pk).update(status=JobStatus.PENDING, result=None, finished_at=None)

    jobs_bulk_cancel(Job.objects.filter(pk=job.pk), actor="staff:admin")

    job = reload(job)
    assert job.status == JobStatus.COMPLETED
    assert job.result["order_id"] == Order.objects.get(job_id=job.pk).pk
