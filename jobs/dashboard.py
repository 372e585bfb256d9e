"""What the admin dashboard shows, read with bounded queries (no HTTP here).

History comes from the rollup tables (``jobs.rollups``); only the minutes
since the last rollup, at most ``TAIL``, are counted from the job table, over
the partial index on ``finished_at``. Active jobs are counted through the
status index, the latest failures read backwards along ``finished_at`` over
a day at most, and the clusters come from django-q2's own status records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Sum
from django.utils import timezone

from jobs import queue
from jobs.models import Job, JobMinute, JobStatus, QueueSample
from jobs.registry import all_kinds
from jobs.rollups import BOUNDS, active_now, finished_by_minute, minute_floor

HOUR = timedelta(hours=1)
DAY = timedelta(hours=24)
# The job table is read for the minutes the rollup has not stored yet (it
# runs every minute, 30 s after a minute ends), but never for more than
# this: a refresh stays cheap even when the schedule falls behind (the
# minutes before show as gaps). Fifteen minutes of a busy system took
# longer than a refresh may (bench/README.md).
TAIL = timedelta(minutes=5)
FAILURES = 10
OUTCOMES = JobStatus.terminal()
# More samples than a day of one-minute runs, in case the schedule ran more often.
MAX_SAMPLES = 2000
HISTORY_CACHE_SECONDS = 120
MINUTES = 24 * 60


def percentile(buckets: list[int], q: float) -> float | None:
    """Estimate the ``q`` quantile (0..1) from cumulative bucket counts over ``BOUNDS``.

    Linear inside the bucket it falls in, as Prometheus's
    ``histogram_quantile`` does; past the last bound it is that bound. None
    when no job was timed.
    """
    total = buckets[-1] if buckets else 0
    if not total:
        return None
    rank = q * total
    below, lower = 0, 0.0
    for count, bound in zip(buckets, BOUNDS):
        if count >= rank:
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        below, lower = count, float(bound)
    return float(BOUNDS[-1])


def _add(into: list[int], more: list[int]) -> list[int]:
    # Rows written with another set of bounds (an older version) are skipped.
    if len(more) != len(BOUNDS) + 1:
        return into
    return [a + b for a, b in zip(into, more)] if into else list(more)


def _add_to_day(series: dict[str, list[int]], day_start: datetime, rows: Iterable[dict]) -> dict[str, list[int]]:
    """Add ``rows`` (minute, status, count) into the day's per-minute ``series``, in place."""
    start = day_start.timestamp()
    for row in rows:
        i = int((row["minute"].timestamp() - start) // 60)
        if 0 <= i < MINUTES and row["status"] in series:
            series[row["status"]][i] += row["count"]
    return series


def _add_to_hour(totals: dict[str, dict], rows: Iterable[dict]) -> dict[str, dict]:
    """Add ``rows`` into per-kind totals of the hour (counts by outcome, wait and run buckets), in place."""
    for row in rows:
        kind = totals.setdefault(row["kind"], {**dict.fromkeys(OUTCOMES, 0), "wait": [], "run": []})
        kind[row["status"]] += row["count"]
        kind["wait"] = _add(kind["wait"], row["wait_buckets"])
        kind["run"] = _add(kind["run"], row["run_buckets"])
    return totals


def _per_kind(hour: dict[str, dict], active: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    empty = {**dict.fromkeys(OUTCOMES, 0), "wait": [], "run": []}
    kinds = sorted({*(kind.name for kind in all_kinds()), *hour, *active})
    table = []
    for kind in kinds:
        ended = hour.get(kind, empty)
        total = sum(ended[outcome] for outcome in OUTCOMES)
        now_active = active.get(kind, {})
        table.append(
            {
                "kind": kind,
                "pending": now_active.get("pending", 0),
                "running": now_active.get("processing", 0),
                "finished_hour": total,
                **{f"{outcome}_hour": ended[outcome] for outcome in OUTCOMES},
                "failure_rate": ended[JobStatus.FAILED] / total if total else None,
                "wait_p50": percentile(ended["wait"], 0.5),
                "wait_p95": percentile(ended["wait"], 0.95),
                "run_p50": percentile(ended["run"], 0.5),
                "run_p95": percentile(ended["run"], 0.95),
            }
        )
    return table


def _queue_series(samples: dict[str, list], now: datetime, current: dict[str, Any]) -> dict[str, list]:
    # The last point is now, so the chart moves with every refresh.
    samples["at"].append(round(now.timestamp(), 3))
    for key in ("due", "pending", "processing"):
        samples[key].append(current[key])
    samples["oldest_pending_seconds"].append(round(current["oldest_pending_seconds"], 1))
    return samples


def _history(day_start: datetime, hour_start: datetime, tail_start: datetime) -> dict[str, Any]:
    """Read the rollup tables before the tail: the day's series, the hour's totals by kind, the queue samples.

    Kept in the shapes the dashboard sends (lists of numbers), so a cached
    copy is cheap to load.
    """
    samples = list(
        QueueSample.objects.filter(at__gte=day_start)
        .order_by("-at")
        .values_list("at", "due", "pending", "processing", "oldest_pending_seconds")[:MAX_SAMPLES]
    )
    samples.reverse()
    day = JobMinute.objects.filter(minute__gte=day_start, minute__lt=tail_start).values("minute", "status")
    hour = JobMinute.objects.filter(minute__gte=hour_start, minute__lt=tail_start).values(
        "kind", "status", "count", "wait_buckets", "run_buckets"
    )
    return {
        "day": _add_to_day(
            {outcome: [0] * MINUTES for outcome in OUTCOMES}, day_start, day.annotate(count=Sum("count")).order_by()
        ),
        "hour": _add_to_hour({}, hour),
        "samples": {
            "at": [round(row[0].timestamp(), 3) for row in samples],
            "due": [row[1] for row in samples],
            "pending": [row[2] for row in samples],
            "processing": [row[3] for row in samples],
            "oldest_pending_seconds": [round(row[4], 1) for row in samples],
        },
    }


def _cached_history(latest: datetime | None, day_start: datetime, hour_start: datetime, tail_start: datetime) -> dict:
    # The rollup tables change only when the rollup runs, which adds a sample:
    # keyed by the latest sample and the minute, the cached copy is never
    # stale, and refreshes within a minute skip thousands of rows.
    if latest is None:
        return _history(day_start, hour_start, tail_start)
    key = f"jobs.dashboard.history:{latest.timestamp()}:{hour_start.timestamp()}:{tail_start.timestamp()}"
    history = cache.get(key)
    if history is None:
        history = _history(day_start, hour_start, tail_start)
        cache.set(key, history, timeout=HISTORY_CACHE_SECONDS)
    return history


def latest_failures(now: datetime, limit: int = FAILURES) -> list[dict[str, Any]]:
    """Return the jobs that failed last (within a day), newest first, with their error codes."""
    rows = (
        Job.objects.filter(status=JobStatus.FAILED, finished_at__gte=now - DAY)
        .order_by("-finished_at")
        .values("id", "kind", "error", "attempts", "finished_at")[:limit]
    )
    return [
        {
            "id": str(row["id"]),
            "kind": row["kind"],
            "code": (row["error"] or {}).get("code", ""),
            "message": str((row["error"] or {}).get("message", ""))[:200],
            "attempts": row["attempts"],
            "finished_at": row["finished_at"].isoformat(),
        }
        for row in rows
    ]


def clusters_alive(now: datetime) -> list[dict[str, Any]]:
    """Return each django-q2 cluster alive now, when it was last seen, and the jobs its workers run."""
    stats = queue.cluster_stats()
    names = {f"{stat.host}:{pid}": stat.cluster_id for stat in stats for pid in stat.workers}
    running: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if names:
        # Processing jobs are few (one per busy worker, plus stuck ones), and
        # the status index finds them.
        jobs = (
            Job.objects.filter(status=JobStatus.PROCESSING, worker__in=list(names))
            .order_by("started_at")
            .values("id", "kind", "worker", "started_at")[:500]
        )
        for job in jobs:
            running[job["worker"]].append(
                {"id": str(job["id"]), "kind": job["kind"], "started_at": job["started_at"].isoformat() if job["started_at"] else None}
            )
    clusters = []
    for stat in sorted(stats, key=lambda stat: (stat.host, stat.pid)):
        workers = [{"pid": pid, "jobs": running.get(f"{stat.host}:{pid}", [])} for pid in stat.workers]
        clusters.append(
            {
                "id": str(stat.cluster_id),
                "host": stat.host,
                "pid": stat.pid,
                "status": str(stat.status),
                "last_seen": stat.timestamp.isoformat(),
                "seen_seconds_ago": round(max(0.0, (now - stat.timestamp).total_seconds()), 1),
                "up_seconds": round((now - stat.tob).total_seconds()) if stat.tob else None,
                "workers": workers,
                "busy": sum(1 for worker in workers if worker["jobs"]),
            }
        )
    return clusters


def dashboard_snapshot(*, now: datetime | None = None) -> dict[str, Any]:
    """Return everything the dashboard shows, as plain JSON-ready data (times as Unix seconds or ISO)."""
    now = now or timezone.now()
    day_start = minute_floor(now) - DAY + timedelta(minutes=1)
    hour_start = minute_floor(now) - HOUR + timedelta(minutes=1)
    earliest_tail = minute_floor(now) - TAIL
    latest, rolled = QueueSample.objects.order_by("-at").values_list("at", "rolled_up_to").first() or (None, None)
    tail_start = max(rolled, earliest_tail) if rolled else earliest_tail
    # Rolled-up minutes before the tail; the tail from the job table.
    history = _cached_history(latest, day_start, hour_start, tail_start)
    live = finished_by_minute(tail_start, now + timedelta(seconds=1))
    active, current = active_now(now)
    # The history is a fresh copy (from the cache, or just read): added to in place.
    day = _add_to_day(history["day"], day_start, live)
    hour = _add_to_hour(history["hour"], (row for row in live if row["minute"] >= hour_start))
    first = int(day_start.timestamp())
    return {
        "now": now.isoformat(),
        "rolled_up_to": rolled.isoformat() if rolled else None,
        "totals": current,
        "finished": {"minutes": list(range(first, first + 60 * MINUTES, 60)), **day},
        "queue": _queue_series(history["samples"], now, current),
        "kinds": _per_kind(hour, active),
        "failures": latest_failures(now),
        "clusters": clusters_alive(now),
    }
