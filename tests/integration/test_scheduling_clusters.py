"""Queues, limits, priorities and delayed start with real `manage.py qcluster` processes (issue 14)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

import jobs
from jobs.models import Job, JobStatus
from tests.support.handlers import PAIR_QUEUE
from tests.support.processes import wait_for
from tests.support.scheduling import CLUSTER_ENV, most_at_once

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_queue,
    pytest.mark.django_db(transaction=True),
]
CLUSTER = {**CLUSTER_ENV, "JOBS_HANDLER_MODULES": "tests.support.handlers"}


def wait_all_done(ids: list, timeout: float) -> list[Job]:
    def done() -> list[Job] | None:
        rows = list(Job.objects.filter(pk__in=ids))
        return rows if all(job.status == JobStatus.COMPLETED for job in rows) else None

    return wait_for(done, timeout=timeout, interval=0.2, what=f"{len(ids)} jobs to complete")


def test_two_clusters_keep_the_queue_and_owner_limits_over_200_jobs(launcher, django_user_model):
    owners = [django_user_model.objects.create_user(f"owner{i}", password="x") for i in range(4)]
    paired = [jobs.submit("tests.pair", {"sleep": 0.02}, owner=owners[i % 4]) for i in range(120)]
    each = [jobs.submit("tests.one_each", {"sleep": 0.02}, owner=owners[i % 4]) for i in range(80)]
    launcher.qcluster("one", Q_WORKERS="4", **CLUSTER)
    launcher.qcluster("two", Q_WORKERS="4", **CLUSTER)

    done = wait_all_done([job.pk for job in paired + each], timeout=180)

    pair_runs = [(job.started_at, job.finished_at) for job in done if job.queue == PAIR_QUEUE]
    assert len(pair_runs) == 120
    # Never more than the queue's limit at once, and the limit was used.
    assert most_at_once(pair_runs) == 2
    by_owner = defaultdict(list)
    for job in done:
        if job.kind == "tests.one_each":
            by_owner[job.owner_id].append(job)
    for runs in by_owner.values():
        assert most_at_once([(job.started_at, job.finished_at) for job in runs]) == 1
        # One at a time per owner means one after another, oldest first.
        assert sorted(runs, key=lambda job: job.started_at) == sorted(runs, key=lambda job: job.created_at)
    # Four owners' jobs ran side by side, and both clusters' workers (4 each) took part.
    assert most_at_once([(job.started_at, job.finished_at) for job in done if job.kind == "tests.one_each"]) > 1
    assert len({job.worker for job in done}) > 4


def test_an_urgent_job_submitted_last_starts_before_the_backlog_ahead_of_it(launcher, user):
    launcher.qcluster(Q_WORKERS="1", Q_BULK="1", **CLUSTER)
    bulk = [jobs.submit("tests.nap", {"sleep": 0.1}, owner=user) for _ in range(15)]
    wait_for(lambda: Job.objects.filter(pk=bulk[0].pk, status__in=["processing", "completed"]).exists(),
             timeout=30, what="the backlog to start")

    urgent = jobs.submit("tests.nap", {}, owner=user, priority=10)
    # Queued ahead of it and not yet handed to the cluster.
    ahead = list(Job.objects.filter(pk__in=[job.pk for job in bulk], status=JobStatus.PENDING, enqueued_at=None))

    done = {job.pk: job for job in wait_all_done([urgent.pk, *(job.pk for job in bulk)], timeout=60)}
    assert len(ahead) >= 5
    assert all(done[urgent.pk].started_at < done[job.pk].started_at for job in ahead)


def test_a_delayed_job_waits_pending_and_starts_close_to_its_time(launcher, user):
    launcher.qcluster(ready=True, Q_WORKERS="1", **CLUSTER)
    run_at = timezone.now() + timedelta(seconds=3)

    job = jobs.submit("tests.nap", {}, owner=user, run_at=run_at)

    assert Job.objects.get(pk=job.pk).status == JobStatus.PENDING
    started = wait_all_done([job.pk], timeout=30)[0].started_at
    # PostgreSQL's pusher wakes when it falls due; SQLite's looks every poll (1 s).
    slack = 1.0 if connection.vendor == "postgresql" else 1.5
    assert run_at <= started <= run_at + timedelta(seconds=slack)
