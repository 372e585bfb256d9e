"""Time the job admin's changelist, its filters and a detail page, in-process.

Usage (from the repository root), after ``bench/fill_jobs.py``::

    .venv/bin/python bench/admin_changelist.py [--runs 7] [--warmup 2] [--budget-ms 300]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/jobs_bench .venv/bin/python bench/admin_changelist.py

Without DATABASE_URL it uses the PostgreSQL database ``jobs_bench`` that
``fill_jobs.py`` fills. A superuser ``bench-admin`` is logged in with Django's
test client (no network, no gunicorn): the figures are server time, from the
request entering Django to the rendered response. Each page is requested
``--warmup`` times, then timed ``--runs`` times; one more run captures the SQL.
For a page over budget, the slowest statement is printed with its plan:
``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL, ``EXPLAIN QUERY PLAN`` on SQLite.
Exit status 1 if any page is over budget.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/jobs_bench")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

CHANGELIST = "/admin/jobs/job/"


def pages() -> list[tuple[str, str]]:
    """(label, path) of each page to time, from the data in the table."""
    from django.contrib.auth import get_user_model
    from django.db.models import Count
    from django.utils import timezone

    from jobs.models import Job, JobEvent, JobEventType, JobStatus

    newest = Job.objects.order_by("-created_at").values_list("created_at", flat=True).first()
    if newest is None:
        sys.exit("The job table is empty: run bench/fill_jobs.py first.")
    # The last full day, so the day drill-down has a day's worth of jobs.
    day = timezone.localtime(newest - timedelta(days=1))
    sample = Job.objects.filter(status=JobStatus.FAILED).order_by("-created_at").first() or Job.objects.first()
    if not sample.events.exists():  # a detail page shows a timeline: give the sample one
        at = sample.created_at
        JobEvent.objects.bulk_create(
            [
                JobEvent(job=sample, type=JobEventType.CREATED, at=at, actor="api:bench"),
                JobEvent(job=sample, type=JobEventType.CLAIMED, at=at, attempt=1, actor="worker:bench-worker-1:4101"),
                JobEvent(job=sample, type=JobEventType.FAILED, at=at, attempt=1, message="payment_declined"),
            ]
        )
    top_owner_id = (
        Job.objects.exclude(owner=None).order_by().values("owner").annotate(n=Count("pk")).order_by("-n")[0]["owner"]
    )
    top_owner = get_user_model().objects.get(pk=top_owner_id).username
    year = f"created_at__year={day.year}"
    month = f"{year}&created_at__month={day.month}"
    return [
        ("first page", CHANGELIST),
        *[(f"status={status}", f"{CHANGELIST}?status__exact={status}") for status in JobStatus.values],
        ("kind=purchases.execute", f"{CHANGELIST}?kind=purchases.execute"),
        ("stuck=yes", f"{CHANGELIST}?stuck=yes"),
        ("date: year", f"{CHANGELIST}?{year}"),
        ("date: month", f"{CHANGELIST}?{month}"),
        ("date: day", f"{CHANGELIST}?{month}&created_at__day={day.day}"),
        ("status=failed + month", f"{CHANGELIST}?status__exact=failed&{month}"),
        ("search: job id", f"{CHANGELIST}?q={sample.pk}"),
        (f"search: owner {top_owner}", f"{CHANGELIST}?q={top_owner}"),
        ("page 2", f"{CHANGELIST}?p=2"),
        ("page 200", f"{CHANGELIST}?p=200"),
        ("job detail", f"{CHANGELIST}{sample.pk}/change/"),
    ]


def explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            return "\n".join(line for (line,) in cursor.fetchall())
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            return "\n".join(str(row[-1]) for row in cursor.fetchall())
    return "(no plan on this database)"


def admin_client():
    """Return a test client logged in as the superuser ``bench-admin`` (made on first use)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    admin, created = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True, "email": "bench-admin@example.com"}
    )
    if created:
        admin.set_password("bench-admin-pass")
        admin.save()
    client = Client()
    client.force_login(admin)
    return client


def time_get(client, path: str, *, warmup: int, runs: int) -> tuple[list[float], list[dict]]:
    """GET ``path`` ``warmup`` times, then ``runs`` timed times (ms); one more run captures the SQL."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmup):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
    with CaptureQueriesContext(connection) as ctx:
        client.get(path)
    return samples, ctx.captured_queries


def arguments(description: str) -> argparse.ArgumentParser:
    """The options every in-process page bench takes (runs, warm-up, budget, filter, verbosity)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--budget-ms", type=float, default=300.0)
    parser.add_argument("--only", help="time only pages whose label contains this")
    parser.add_argument("--verbose", action="store_true", help="print every statement of every page with its time")
    return parser


def time_pages(todo: list[tuple[str, str]], args: argparse.Namespace) -> bool:
    """Time each (label, path) as a logged-in superuser, print a table; False if any is over budget."""
    from django.db import connection

    from jobs.models import Job

    client = admin_client()
    todo = [(label, path) for label, path in todo if not args.only or args.only in label]
    estimate = Job.objects.count() if connection.vendor != "postgresql" else None
    if estimate is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [Job._meta.db_table])
            estimate = cursor.fetchone()[0]
    print(
        f"database: {connection.vendor} {connection.settings_dict['NAME']}, ~{estimate:,} jobs; "
        f"{args.warmup} warm-up + {args.runs} timed runs per page; budget {args.budget_ms:.0f} ms"
    )
    print(f"load average: {' '.join(f'{load:.2f}' for load in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"{'page':<34} {'best':>9} {'median':>9} {'max':>9} {'queries':>7}  {'ok':<4} path")
    slow: list[tuple[str, str, float, list[dict]]] = []
    for label, path in todo:
        samples, queries = time_get(client, path, warmup=args.warmup, runs=args.runs)
        best, median, worst = min(samples), statistics.median(samples), max(samples)
        ok = median <= args.budget_ms
        print(
            f"{label:<34} {best:6.1f} ms {median:6.1f} ms {worst:6.1f} ms {len(queries):>7}  "
            f"{'yes' if ok else 'NO':<4} {path}",
            flush=True,
        )
        if args.verbose:
            for query in queries:
                print(f"    {float(query['time']) * 1000:7.1f} ms  {query['sql'][:160]}")
        if not ok:
            slow.append((label, path, median, queries))

    for label, path, median, queries in slow:
        worst = max(queries, key=lambda query: float(query["time"]))
        print(f"\n=== {label} ({path}): median {median:.1f} ms; slowest of {len(queries)} statements "
              f"took {float(worst['time']) * 1000:.1f} ms:\n{worst['sql']}\n")  # fmt: skip
        print(explain(worst["sql"]))
    return not slow


def main() -> None:
    args = arguments(__doc__.splitlines()[0]).parse_args()

    import django

    django.setup()
    if not time_pages(pages(), args):
        sys.exit(1)


if __name__ == "__main__":
    main()
