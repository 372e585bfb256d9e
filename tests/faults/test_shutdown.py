"""Stopping a cluster under a running job: SIGTERM lets it finish; a cut-off job is recovered."""

from __future__ import annotations

import signal

import pytest

from jobs import submit
from jobs.models import Job, JobStatus
from jobs.recovery import reap_task
from tests.faults.support import executions, runs, settle
from tests.support.processes import group_alive, stop, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_queue,
    pytest.mark.faults,
    pytest.mark.django_db(transaction=True),
]


def processing(job: Job) -> bool:
    job.refresh_from_db()
    return job.status == JobStatus.PROCESSING


def test_sigterm_to_the_cluster_lets_the_running_job_finish(clusters, user):
    cluster = clusters.start()
    job = submit("faults.sleep", {"seconds": 3}, owner=user)
    wait_for(lambda: processing(job), timeout=20, interval=0.05, what="the job to start")

    # What `kill <pid>` or a process manager does: SIGTERM to the main process only.
    cluster.send_signal(signal.SIGTERM)
    assert cluster.wait(timeout=30) == 0, clusters.logs()
    assert not group_alive(cluster.pid), "processes of the cluster left behind"

    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED, (job.status, clusters.logs())
    assert executions() == [str(job.pk)] and len(runs()) == 1


def test_a_job_cut_off_by_a_bounded_stop_is_recovered_by_the_reaper(clusters, user):
    # Stopping with a bound (SIGTERM, then SIGKILL to the group after a grace
    # period) cuts off a job longer than the grace. The short lease grace is
    # safe: this job never runs past its timeout.
    first = clusters.start("first", JOBS_LEASE_GRACE="2")
    job = submit("faults.sleep", {"seconds": 3, "allow_rerun": True}, owner=user)
    wait_for(lambda: processing(job), timeout=20, interval=0.05, what="the job to start")

    stop(first, grace=1)
    wait_for(lambda: not group_alive(first.pid), timeout=10, what="the killed cluster to be gone")
    job.refresh_from_db()
    assert job.status == JobStatus.PROCESSING and job.attempts == 1

    clusters.start("second", JOBS_LEASE_GRACE="2")
    settle([job.pk], timeout=40, reap=reap_task, logs=clusters.logs)

    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED, (job.error, clusters.logs())
    assert job.attempts == 2 and len(runs()) == 2
    # Its side effect happened in the cut-off attempt already: the handler
    # saw that on the second run (handlers must be idempotent by job id).
    assert executions() == [str(job.pk)]
    assert job.result["first"] is False
