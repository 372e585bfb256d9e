"""Time the admin jobs dashboard: one refresh (its JSON) and its page, in-process, at 1,000,000 jobs.

Usage (from the repository root), after ``bench/fill_jobs.py``::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/jobs_bench .venv/bin/python bench/dashboard.py
    DATABASE_URL=... .venv/bin/python bench/dashboard.py --busy-hour 100000

First the rollup task (``jobs.rollups.rollup_task``, a one-minute schedule on
a live system) runs as it would: once to catch up on the last 24 hours from
an empty history, then once more as a steady-state run; both are timed. Then
the dashboard's JSON and page are timed as ``admin_changelist.py`` times
pages (warm-up runs, then timed runs: best, median, max; the SQL of the
slowest statement with its plan when the median is over budget), twice: with
the rollups, and as if no rollup had ever run (the job table's last 5
minutes are then counted on each refresh, and older ones are missing).
Exit status 1 if any is over budget.

``--busy-hour N`` first moves N finished jobs into the last hour (their
wait and run times kept), for the volume of a busy system: N = 100,000 is
about 28 jobs a second.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.admin_changelist import arguments, time_pages  # noqa: E402 - sets the environment defaults

PAGE = "/admin/jobs/dashboard/"
DATA = "/admin/jobs/dashboard/data/"

# Moves finished jobs into the last hour: each keeps its wait and run time.
BUSY_SQL = """
WITH picked AS (
    SELECT id, random() * interval '1 hour' AS ago FROM jobs_job
    WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at < now() - interval '1 day'
    LIMIT %s
)
UPDATE jobs_job AS job SET
    finished_at = now() - picked.ago,
    started_at = now() - picked.ago - (job.finished_at - job.started_at),
    created_at = now() - picked.ago - (job.finished_at - job.created_at),
    expires_at = now() - picked.ago + interval '30 days'
FROM picked WHERE job.id = picked.id
"""


def busy_hour(count: int) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("--busy-hour needs PostgreSQL.")
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(BUSY_SQL, [count])
        moved = cursor.rowcount
        cursor.execute("VACUUM (ANALYZE) jobs_job")
    print(f"moved {moved:,} finished jobs into the last hour in {time.perf_counter() - start:.1f} s")


def rollups() -> None:
    """Empty the history, then time the rollup task's catch-up run and a steady-state run."""
    from django.db.models import Sum

    from jobs.models import JobMinute, QueueSample
    from jobs.rollups import rollup_task

    QueueSample.objects.all().delete()
    JobMinute.objects.all().delete()
    for label in ("catch-up (24 hours)", "steady state"):
        start = time.perf_counter()
        outcome = rollup_task()
        print(f"rollup task, {label}: {(time.perf_counter() - start) * 1000:.0f} ms, {outcome}")
    total = JobMinute.objects.aggregate(n=Sum("count"))["n"] or 0
    print(f"history: {JobMinute.objects.count():,} minute rows for {total:,} jobs finished in the last 24 hours")


def fake_clusters() -> None:
    """Make the dashboard see the clusters whose workers ran the bench's jobs (``fill_jobs.WORKERS``)."""
    from types import SimpleNamespace

    from django.utils import timezone

    from bench.fill_jobs import WORKERS
    from jobs import queue

    now = timezone.now()
    hosts: dict[str, list[int]] = {}
    for name in WORKERS:
        host, pid = name.rsplit(":", 1)
        hosts.setdefault(host, []).append(int(pid))
    stats = [
        SimpleNamespace(cluster_id=f"bench-{host}", host=host, pid=4100, status="Working", timestamp=now, tob=now, workers=pids)
        for host, pids in hosts.items()
    ]
    queue.cluster_stats = lambda: stats
    print(f"clusters: {len(stats)} (made up, with the workers named in the bench's running jobs)")


def breakdown(path: str, runs: int) -> None:
    """Print the median wall time of ``path`` beside this process's CPU time and the SQL time.

    On a loaded machine the wall time also counts the wait for a CPU; the
    other two are the work a refresh costs.
    """
    import statistics

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.admin_changelist import admin_client

    client = admin_client()
    walls, cpus, sqls = [], [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        with CaptureQueriesContext(connection) as ctx:
            client.get(path)
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        sqls.append(sum(float(query["time"]) for query in ctx.captured_queries) * 1000)
    print(
        f"{path}: median wall {statistics.median(walls):.0f} ms = Python CPU {statistics.median(cpus):.0f} ms "
        f"+ SQL {statistics.median(sqls):.0f} ms + waiting for a CPU (over {runs} runs)"
    )


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--busy-hour", type=int, default=0, help="move this many finished jobs into the last hour first")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import transaction

    from jobs.models import JobMinute, QueueSample

    if args.busy_hour:
        busy_hour(args.busy_hour)
    fake_clusters()
    rollups()
    pages = [("dashboard refresh (JSON)", DATA), ("dashboard page", PAGE)]
    print("\nwith the rollups (the schedule runs every minute):")
    ok = time_pages(pages, args)
    breakdown(DATA, args.runs)
    print("\nbefore any rollup (the last 5 minutes counted from the job table):")
    with transaction.atomic():
        QueueSample.objects.all().delete()
        JobMinute.objects.all().delete()
        ok = time_pages([(f"{label}, no rollup", path) for label, path in pages], args) and ok
        transaction.set_rollback(True)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
