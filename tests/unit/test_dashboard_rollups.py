"""The dashboard's figures: per-minute rollups, the live tail, per-kind table, percentiles, clusters."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from jobs import dashboard, queue
from jobs.dashboard import dashboard_snapshot, percentile
from jobs.models import JobMinute, JobStatus, QueueSample
from jobs.rollups import BOUNDS, SETTLE, finished_by_minute, minute_floor, rollup_task
from tests.support import handlers  # noqa: F401 - registers the tests.* kinds
from tests.support.factories import make_job

pytestmark = pytest.mark.django_db


def finished(now, *, status=JobStatus.COMPLETED, kind="tests.noop", ago=0.0, wait=1.0, run=2.0, **fields):
    """A job that ended ``ago`` seconds before ``now`` after waiting ``wait`` and running ``run`` seconds."""
    end = now - timedelta(seconds=ago)
    start = end - timedelta(seconds=run)
    return make_job(
        status=status, kind=kind, created_at=start - timedelta(seconds=wait), started_at=start, finished_at=end, **fields
    )


def bucket(seconds: float) -> int:
    return next(i for i, bound in enumerate(BOUNDS) if seconds <= bound)


def test_finished_by_minute_counts_by_minute_kind_and_outcome_with_cumulative_buckets():
    now = minute_floor(timezone.now()) + timedelta(seconds=30)
    finished(now, wait=0.2, run=3)
    finished(now, wait=40, run=3)
    finished(now, status=JobStatus.FAILED)
    finished(now, ago=60)
    rows = {(r["minute"], r["kind"], r["status"]): r for r in finished_by_minute(now - timedelta(minutes=5), now + timedelta(seconds=1))}
    this_minute = minute_floor(now)
    done = rows[(this_minute, "tests.noop", JobStatus.COMPLETED)]
    assert done["count"] == 2
    assert done["wait_buckets"][-1] == 2  # both started
    assert done["wait_buckets"][bucket(0.2)] == 1 and done["wait_buckets"][bucket(40)] == 2
    assert done["run_buckets"][bucket(3) - 1] == 0 and done["run_buckets"][bucket(3)] == 2
    assert rows[(this_minute, "tests.noop", JobStatus.FAILED)]["count"] == 1
    assert rows[(this_minute - timedelta(minutes=1), "tests.noop", JobStatus.COMPLETED)]["count"] == 1


def test_rollup_stores_settled_minutes_once_samples_the_queue_and_prunes():
    now = minute_floor(timezone.now()) + timedelta(seconds=45)
    finished(now, ago=120)
    finished(now, ago=125, status=JobStatus.CANCELLED)
    finished(now, ago=5)  # this minute: not settled yet
    make_job(status=JobStatus.PENDING, created_at=now - timedelta(seconds=90))
    # Retried: waiting since its retry became due (30 s), or not due yet.
    make_job(status=JobStatus.PENDING, created_at=now - timedelta(hours=1), available_at=now - timedelta(seconds=30))
    make_job(status=JobStatus.PENDING, created_at=now - timedelta(hours=2), available_at=now + timedelta(seconds=60))
    make_job(status=JobStatus.PROCESSING)
    JobMinute.objects.create(minute=now - timedelta(hours=30), kind="tests.noop", status="completed", count=9)

    rollup_task(now)
    rollup_task(now)  # recomputed, not doubled

    stored = {(row.status, row.count) for row in JobMinute.objects.all()}
    assert stored == {("completed", 1), ("cancelled", 1)}
    sample = QueueSample.objects.latest()
    assert (sample.pending, sample.due, sample.processing) == (3, 2, 1)
    assert sample.oldest_pending_seconds == pytest.approx(90, abs=1)
    assert sample.rolled_up_to == minute_floor(now - SETTLE)


def test_percentile_interpolates_inside_the_bucket():
    # 10 jobs: 4 at most 0.1 s, 10 at most 0.25 s.
    buckets = [0] * len(BOUNDS) + [10]
    for i, bound in enumerate(BOUNDS):
        buckets[i] = 4 if bound <= 0.1 else 10
        buckets[i] = 0 if bound < 0.1 else buckets[i]
    assert percentile(buckets, 0.5) == pytest.approx(0.1 + 0.15 * (1 / 6))
    assert percentile([0] * (len(BOUNDS) + 1), 0.5) is None
    assert percentile([0] * len(BOUNDS) + [3], 0.95) == BOUNDS[-1]


def test_snapshot_joins_rollups_and_the_live_tail():
    now = minute_floor(timezone.now()) + timedelta(seconds=50)
    finished(now, ago=600, status=JobStatus.FAILED, error={"code": "insufficient_stock", "message": "No stock."})
    finished(now, ago=600)
    finished(now, ago=7200)  # in the day, not in the hour
    rollup_task(now - timedelta(seconds=200))  # rolls up to the minute 4 minutes ago
    finished(now, ago=10, wait=0.5, run=1.5)  # only in the live tail
    make_job(status=JobStatus.PENDING, kind="tests.noop")

    snapshot = dashboard_snapshot(now=now)

    series = snapshot["finished"]
    assert len(series["minutes"]) == 1440 and series["minutes"][-1] == int(minute_floor(now).timestamp())
    assert sum(series["completed"]) == 3 and sum(series["failed"]) == 1
    assert series["completed"][-1] == 1
    noop = next(row for row in snapshot["kinds"] if row["kind"] == "tests.noop")
    assert (noop["pending"], noop["running"], noop["finished_hour"], noop["failed_hour"]) == (1, 0, 3, 1)
    assert noop["failure_rate"] == pytest.approx(1 / 3)
    assert series["minutes"][-121] <= (now - timedelta(seconds=7200)).timestamp() < series["minutes"][-120]
    assert series["completed"][-121] == 1
    assert 0.25 < noop["wait_p50"] <= 1.0 and noop["run_p95"] <= 2.5
    assert [f["code"] for f in snapshot["failures"]] == ["insufficient_stock"]
    assert snapshot["totals"]["pending"] == 1
    assert snapshot["queue"]["at"][-1] == pytest.approx(now.timestamp())
    assert len(snapshot["queue"]["at"]) == 2  # the rollup's sample, then now


def test_clusters_alive_shows_each_workers_running_job(monkeypatch):
    now = timezone.now()
    stat = SimpleNamespace(
        cluster_id="c-1", host="box", pid=10, status="Working", timestamp=now - timedelta(seconds=1),
        tob=now - timedelta(minutes=5), workers=[11, 12],
    )
    monkeypatch.setattr(queue, "cluster_stats", lambda: [stat])
    job = make_job(status=JobStatus.PROCESSING, worker="box:11", kind="tests.noop")
    make_job(status=JobStatus.PROCESSING, worker="elsewhere:11")
    (cluster,) = dashboard.clusters_alive(now)
    assert (cluster["host"], cluster["pid"], cluster["busy"], cluster["up_seconds"]) == ("box", 10, 1, 300)
    assert cluster["seen_seconds_ago"] == pytest.approx(1, abs=0.1)
    assert cluster["workers"] == [
        {"pid": 11, "jobs": [{"id": str(job.pk), "kind": "tests.noop", "started_at": job.started_at.isoformat()}]},
        {"pid": 12, "jobs": []},
    ]


def test_history_is_cached_until_the_next_rollup():
    now = minute_floor(timezone.now()) + timedelta(seconds=50)
    rollup_task(now - timedelta(seconds=200))
    assert sum(dashboard_snapshot(now=now)["finished"]["completed"]) == 0
    empty = [0] * (len(BOUNDS) + 1)
    JobMinute.objects.create(
        minute=minute_floor(now) - timedelta(minutes=10), kind="tests.noop", status="completed", count=5,
        wait_buckets=empty, run_buckets=empty,
    )  # fmt: skip
    # The rollup tables change only when the rollup runs: until then the cached copy holds.
    assert sum(dashboard_snapshot(now=now)["finished"]["completed"]) == 0
    rollup_task(now - timedelta(seconds=190))
    assert sum(dashboard_snapshot(now=now)["finished"]["completed"]) == 5


def test_migrate_schedules_the_rollup_every_minute():
    from django_q.models import Schedule

    queue.ensure_schedules(every_minutes=60)
    schedule = Schedule.objects.get(name=queue.ROLLUP_SCHEDULE_NAME)
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == ("jobs.rollups.rollup_task", Schedule.MINUTES, 1)
