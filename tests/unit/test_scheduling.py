"""Queues, limits, priorities and delayed start (issue 14, items 1-3), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

import jobs
from jobs import delivery, transitions
from jobs.models import Job, JobStatus
from jobs.services import job_cancel
from tests.support.handlers import PAIR_QUEUE
from tests.support.scheduling import QUEUE_LIMITS, most_at_once

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def limits(settings):
    settings.JOBS = {**settings.JOBS, "QUEUE_LIMITS": QUEUE_LIMITS}


def deliver(limit: int = 10) -> delivery.Delivery:
    now = timezone.now()
    return delivery.deliver(now=now, lost=now - timedelta(minutes=5), limit=limit)


def test_a_job_has_its_kinds_priority_unless_the_submit_says_otherwise(user):
    assert jobs.submit("tests.noop", {}, owner=user).priority == 0
    assert jobs.submit("tests.noop", {}, owner=user, priority=7).priority == 7
    with pytest.raises(ValueError, match="priority must be a whole number between"):
        jobs.submit("tests.noop", {}, owner=user, priority=40_000)


def test_deliveries_take_higher_priority_first_then_the_oldest(make_job):
    start = timezone.now() - timedelta(minutes=10)
    bulk = [make_job(created_at=start + timedelta(seconds=i)) for i in range(3)]
    urgent = make_job(created_at=start + timedelta(minutes=5), priority=10)
    low = make_job(created_at=start - timedelta(minutes=1), priority=-1)

    taken = [pk for pk, _ in deliver().jobs]

    assert taken == [urgent.pk, *[job.pk for job in bulk], low.pk]


def test_a_delayed_job_is_pending_with_its_start_time_and_is_not_delivered_before_it(user):
    run_at = timezone.now() + timedelta(hours=1)

    job = jobs.submit("tests.noop", {}, owner=user, run_at=run_at)

    stored = Job.objects.get(pk=job.pk)
    assert (stored.status, stored.run_at, stored.available_at) == (JobStatus.PENDING, run_at, run_at)
    assert stored.progress_message.startswith("Waiting: starts at")
    assert deliver().jobs == []
    assert abs((delivery.next_due(timezone.now()) - run_at).total_seconds()) < 0.001
    assert transitions.claim(job.pk, job.kind) is None


def test_a_job_whose_time_came_is_delivered(user):
    job = jobs.submit("tests.noop", {}, owner=user, run_at=timezone.now() + timedelta(hours=1))
    Job.objects.filter(pk=job.pk).update(available_at=timezone.now() - timedelta(seconds=1))

    assert [pk for pk, _ in deliver().jobs] == [job.pk]


def test_a_delayed_job_can_be_cancelled_while_it_waits(user):
    job = jobs.submit("tests.noop", {}, owner=user, run_at=timezone.now() + timedelta(hours=1))

    assert job_cancel(job=job).status == JobStatus.CANCELLED
    assert deliver().jobs == []


def test_run_at_must_be_aware(user):
    with pytest.raises(ValueError, match="timezone-aware"):
        jobs.submit("tests.noop", {}, owner=user, run_at=timezone.now().replace(tzinfo=None))


def test_a_second_job_of_one_owner_waits_with_a_message_while_the_first_runs(make_job, user, other_user):
    running = make_job("tests.one_each", status=JobStatus.PROCESSING, attempts=1)

    mine = jobs.submit("tests.one_each", {}, owner=user)
    theirs = jobs.submit("tests.one_each", {}, owner=other_user)

    assert mine.progress_message == "Waiting: you have one of these running already"
    assert theirs.progress_message == ""
    assert [pk for pk, _ in deliver().jobs] == [theirs.pk]
    # Delivered all the same (a race), its claim refuses it and says why.
    assert transitions.claim(mine.pk, mine.kind) is None
    waiting = Job.objects.get(pk=mine.pk)
    assert (waiting.status, waiting.enqueued_at) == (JobStatus.PENDING, None)
    assert waiting.progress_message == "Waiting: you have one of these running already"

    Job.objects.filter(pk=running.pk).update(status=JobStatus.COMPLETED, finished_at=timezone.now())

    assert [pk for pk, _ in deliver().jobs] == [mine.pk]
    claimed = transitions.claim(mine.pk, mine.kind)
    assert claimed is not None and claimed.status == JobStatus.PROCESSING
    assert Job.objects.get(pk=mine.pk).progress_message == ""


def test_a_queue_runs_no_more_than_its_limit(make_job):
    for _ in range(2):
        make_job("tests.pair", queue=PAIR_QUEUE, status=JobStatus.PROCESSING, attempts=1)
    third = make_job("tests.pair", queue=PAIR_QUEUE)
    unlimited = make_job("tests.noop")

    assert [pk for pk, _ in deliver().jobs] == [unlimited.pk]
    assert transitions.claim(third.pk, third.kind) is None
    assert Job.objects.get(pk=third.pk).progress_message == "Waiting: the tests.pair queue is busy (2 running at most)"


def test_a_limited_queue_is_delivered_one_head_at_a_time_up_to_its_limit(make_job):
    start = timezone.now() - timedelta(minutes=1)
    queued = [make_job("tests.pair", queue=PAIR_QUEUE, created_at=start + timedelta(seconds=i)) for i in range(3)]

    first, second, third = deliver(), deliver(), deliver()

    assert ([pk for pk, _ in first.jobs], first.limited) == ([queued[0].pk], True)
    assert [pk for pk, _ in second.jobs] == [queued[1].pk]
    # Two hold the queue's places (delivered, not yet claimed): the third waits.
    assert third.jobs == []


def test_most_at_once_counts_overlaps():
    assert most_at_once([(0, 2), (1, 3), (2, 4), (5, 6)]) == 2


def test_the_sales_report_runs_one_per_user_and_says_so(make_job, user):
    from jobs.registry import get_kind
    from jobs.scheduling import queue_limits, wait_reason

    report = get_kind("purchases.sales_report")
    make_job(report.name, status=JobStatus.PROCESSING, attempts=1, queue=report.queue)

    assert (report.queue, report.per_owner_limit, queue_limits()["reports"]) == ("reports", 1, 2)
    assert wait_reason(report, owner_id=user.pk) == "Waiting: you have a report running"


def test_a_delayed_job_that_starts_no_longer_says_it_waits(user):
    job = jobs.submit("tests.noop", {}, owner=user, run_at=timezone.now() + timedelta(hours=1))
    Job.objects.filter(pk=job.pk).update(available_at=timezone.now() - timedelta(seconds=1))

    assert transitions.claim(job.pk, job.kind) is not None
    assert Job.objects.get(pk=job.pk).progress_message == ""


def test_without_the_job_table_a_freed_place_sends_the_waiting_jobs_again(make_job, monkeypatch, fake_queue):
    from jobs import queue
    from jobs.registry import get_kind
    from jobs.scheduling import release

    monkeypatch.setattr(queue, "uses_job_table", lambda: False)
    waiting = make_job("tests.pair", queue=PAIR_QUEUE, enqueued_at=None)
    make_job("tests.pair", queue=PAIR_QUEUE, enqueued_at=timezone.now())  # already sent
    make_job("tests.noop", enqueued_at=None)  # another queue

    release(get_kind("tests.pair"))

    assert fake_queue.enqueued == [(waiting.pk, "tests.pair")]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's cheaper statement")
def test_a_delivery_that_skips_the_limited_kinds_says_whether_they_wait(make_job):
    def skipping() -> delivery.Delivery:
        now = timezone.now()
        return delivery.deliver(now=now, lost=now - timedelta(minutes=5), limit=10, limited_waiting=False)

    plain = make_job("tests.noop")
    assert ([pk for pk, _ in skipping().jobs], skipping().limited_waiting) == ([plain.pk], False)

    paired = make_job("tests.pair", queue=PAIR_QUEUE)
    taken = skipping()

    assert (taken.jobs, taken.limited_waiting) == ([], True)
    assert [pk for pk, _ in deliver().jobs] == [paired.pk]
