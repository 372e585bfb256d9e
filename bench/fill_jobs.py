"""Fill the job table with a realistic million rows for the admin benchmark.

Usage (from the repository root)::

    .venv/bin/python bench/fill_jobs.py --reset                    # 1,000,000 jobs in jobs_bench
    .venv/bin/python bench/fill_jobs.py --reset --rows 200000
    DATABASE_URL=sqlite:///var/bench.sqlite3 .venv/bin/python bench/fill_jobs.py --rows 20000

Without DATABASE_URL it uses postgres://postgres@127.0.0.1:5432/jobs_bench. On
PostgreSQL the database is created if missing and migrated; ``--recreate-db``
drops it first (use it when the schema is older than the migrations, which the
script detects). It refuses databases whose name does not contain "bench", and
refuses SQLite above 100,000 rows.

The mix: ~80% completed, 10% failed, 3% cancelled, 5% pending, 2% processing
(5% of those stuck: started hours to days ago); 85% ``purchases.execute``, 10%
``reports.export``, 5% ``notifications.send_email``; ~200 owners (``bench-owner-NNN``,
a few heavy ones); finished jobs spread over the last 90 days, the pending backlog
mostly in the last 6 hours; times, attempts, progress, errors and expiry consistent
with each status. Rows are generated in Python and loaded with COPY in chunks, then
the table is vacuumed and analysed, as autovacuum would have done in production.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/jobs_bench")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

SQLITE_MAX_ROWS = 100_000
OWNER_PREFIX = "bench-owner-"
PURCHASE = "purchases.execute"
KINDS = [(PURCHASE, 0.85), ("reports.export", 0.95), ("notifications.send_email", 1.0)]
STATUSES = [("completed", 0.80), ("failed", 0.90), ("cancelled", 0.93), ("pending", 0.98), ("processing", 1.0)]
CANCELLED_ERROR = {"code": "cancelled", "message": "The job was cancelled."}
INTERNAL_ERROR = {
    "code": "internal_error",
    "message": "The job failed after repeated unexpected errors. Staff can see the details; "
    "you may submit it again.",
}
JOB_ERRORS = [
    {"code": "payment_declined", "message": "The payment was declined. Use another payment method."},
    {"code": "out_of_stock", "message": "Not enough stock for product 17."},
    {"code": "order_released", "message": "This order was not completed."},
]
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/jobs/runner.py", line 84, in run_job\n'
    "    result = kind.handler(ctx, job.payload)\n"
    '  File "/app/purchases/operations.py", line 68, in execute_purchase\n'
    "    charge = payments.charge(\n"
    "purchases.payments.GatewayTimeout: payment gateway did not answer within 10 s\n"
)
STUCK_AFTER = timedelta(hours=1)
LEASE = timedelta(minutes=5)
WORKERS = [f"bench-worker-{n}:{pid}" for n in range(1, 5) for pid in (4101, 4102)]


def pick(table: list[tuple[str, float]], r: float) -> str:
    for value, upto in table:
        if r < upto:
            return value
    return table[-1][0]


class JobFactory:
    """Makes one job row (a dict of column values) at a time, consistent with its status."""

    def __init__(self, *, owner_ids: list[int], now: datetime, days: int, ttl_days: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.owner_ids = owner_ids
        self.now = now
        self.days = days
        self.ttl = timedelta(days=ttl_days)
        self.order_seq = 0

    def owner(self, kind: str) -> int | None:
        rng = self.rng
        if kind == "notifications.send_email" and rng.random() < 0.6:
            return None  # system mail
        if kind == "reports.export" and rng.random() < 0.3:
            return None  # nightly reports
        # A few heavy owners: the first owner has ~1.7% of all jobs, the median ~0.3%.
        return self.owner_ids[int(len(self.owner_ids) * rng.random() ** 1.3)]

    def payload(self, kind: str) -> dict[str, Any]:
        rng = self.rng
        if kind == PURCHASE:
            goods = [
                {"product_id": rng.randint(1, 500), "quantity": rng.randint(1, 5)}
                for _ in range(rng.choice((1, 1, 1, 2, 2, 3)))
            ]
            body: dict[str, Any] = {"goods": goods}
            if rng.random() < 0.1:
                body["payment_token"] = "tok_decline"
            return body
        if kind == "reports.export":
            return {"report": rng.choice(("sales", "stock", "customers")), "format": "csv", "month": rng.randint(1, 12)}
        return {"template": rng.choice(("receipt", "welcome", "password_reset")), "to": f"user{rng.randint(1, 9999)}@example.com"}

    def result(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        if kind == PURCHASE:
            self.order_seq += 1
            lines = [
                {**line, "sku": f"SKU-{line['product_id']:04d}", "unit_price": f"{rng.randint(1, 200)}.00"}
                for line in payload["goods"]
            ]
            total = sum(int(line["unit_price"].split(".")[0]) * line["quantity"] for line in lines)
            return {"order_id": self.order_seq, "total": f"{total}.00", "currency": "EUR", "lines": lines}
        if kind == "reports.export":
            return {"url": f"/media/reports/{uuid.UUID(int=rng.getrandbits(128))}.csv", "rows": rng.randint(10, 50_000)}
        return {"message_id": f"<{rng.getrandbits(64):x}@mail.example.com>"}

    def duration(self, kind: str) -> timedelta:
        mean = {PURCHASE: 1.5, "reports.export": 30.0}.get(kind, 0.3)
        return timedelta(seconds=min(self.rng.lognormvariate(0, 0.6) * mean, 600))

    def created_at(self, status: str) -> datetime:
        """When a job of ``status`` was submitted."""
        rng, now = self.rng, self.now
        if status == "pending":
            # A backlog: mostly the last 6 hours, a few forgotten ones from any day.
            window = timedelta(hours=6) if rng.random() < 0.95 else timedelta(days=self.days)
            return now - window * rng.random()
        if status == "processing":
            if rng.random() < 0.05:  # stuck: its worker died hours or days ago
                return now - STUCK_AFTER - timedelta(days=min(self.days, 30)) * rng.random()
            # Running now: started within the last 45 s, under every kind's timeout.
            return now - timedelta(seconds=45) * rng.random()
        return now - timedelta(days=self.days) * rng.random()

    def plan(self, count: int, *, order: str = "created") -> list[tuple[float, int]]:
        """(created_at timestamp, status index) of ``count`` jobs, in insertion order.

        ``created``: oldest first, as the API inserts them, so the table is stored
        in created_at order like an append-only table. ``random``: scattered, like
        a table whose TTL purges free space that new rows then reuse.
        """
        names = [name for name, _ in STATUSES]
        plan = []
        for _ in range(count):
            status = pick(STATUSES, self.rng.random())
            plan.append((self.created_at(status).timestamp(), names.index(status)))
        if order == "created":
            plan.sort()
        return plan

    def row(self, created: datetime, status: str) -> dict[str, Any]:
        rng, now = self.rng, self.now
        kind = pick(KINDS, rng.random())
        payload = self.payload(kind)
        owner_id = self.owner(kind)
        row: dict[str, Any] = {
            "id": uuid.UUID(int=rng.getrandbits(128), version=4),
            "kind": kind,
            "owner_id": owner_id,
            "status": status,
            "payload": payload,
            "result": None,
            "result_status": None,
            "call": {},
            "error": None,
            "traceback": "",
            "progress_percentage": 0,
            "progress_message": "",
            "attempts": 0,
            "max_attempts": 3,
            "cancel_requested": False,
            "idempotency_key": None,
            "request_fingerprint": hashlib.sha256(
                json.dumps([kind, payload], sort_keys=True, separators=(",", ":")).encode()
            ).hexdigest(),
            "task_id": f"{rng.getrandbits(128):032x}",
            "worker": "",
            "available_at": None,
            "started_at": None,
            "finished_at": None,
            "expires_at": None,
        }
        if owner_id is not None and kind == PURCHASE and rng.random() < 0.3:
            row["idempotency_key"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))

        # Nothing happens after now: the times of a job submitted a moment ago are clamped.
        queue_delay = timedelta(seconds=rng.expovariate(2.0))
        if status == "pending":
            if rng.random() < 0.1:  # waiting for a retry after an unexpected error
                row["attempts"] = 1
                row["started_at"] = min(created + queue_delay, now)
                row["available_at"] = now + timedelta(seconds=rng.randint(1, 300))
                row["worker"] = rng.choice(WORKERS)
        elif status == "processing":
            row["started_at"] = min(created + queue_delay, now)
            row["attempts"] = 1 if rng.random() < 0.9 else 2
            row["progress_percentage"] = rng.choice((5, 10, 40, 40, 60, 90))
            row["progress_message"] = {5: "Checking the order", 10: "Reserving stock", 40: "Charging the payment"}.get(
                row["progress_percentage"], "Working"
            )
            row["worker"] = rng.choice(WORKERS)
            row["cancel_requested"] = rng.random() < 0.01
        else:
            started = min(created + queue_delay, now)
            if status == "completed":
                row["attempts"] = 1 if rng.random() < 0.93 else rng.choice((2, 2, 3))
                row["progress_percentage"], row["progress_message"] = 100, "Done"
                row["result"] = self.result(kind, payload)
                finished = started + self.duration(kind)
            elif status == "failed":
                if rng.random() < 0.3:  # unexpected errors until the last attempt
                    row["attempts"] = 3
                    row["error"] = INTERNAL_ERROR
                    row["traceback"] = TRACEBACK
                else:  # a JobError the handler raised knowingly
                    row["attempts"] = 1
                    row["error"] = JOB_ERRORS[0] if rng.random() < 0.7 else rng.choice(JOB_ERRORS[1:])
                row["progress_percentage"], row["progress_message"] = 40, "Charging the payment"
                finished = started + self.duration(kind)
            else:  # cancelled
                row["error"] = CANCELLED_ERROR
                row["cancel_requested"] = True
                if rng.random() < 0.6:  # while pending: never started
                    started = None
                    finished = created + timedelta(seconds=rng.uniform(1, 600))
                else:  # cooperatively, while running
                    row["attempts"] = 1
                    row["progress_percentage"], row["progress_message"] = 10, "Reserving stock"
                    finished = started + self.duration(kind)
            if started is not None:
                row["started_at"] = started
                row["worker"] = rng.choice(WORKERS)
            row["finished_at"] = finished = min(finished, now)
            row["expires_at"] = finished + self.ttl
        row["created_at"] = created
        row["updated_at"] = row["finished_at"] or row["started_at"] or created
        # Sent to the cluster when submitted; a running job's lease is its timeout past its start.
        row["enqueued_at"] = created
        row["lease_expires_at"] = row["started_at"] + LEASE if status == "processing" else None
        return row


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def ensure_postgres_database(url: str, *, recreate: bool) -> None:
    """Create the database of ``url`` if missing (drop it first with ``recreate``)."""
    import psycopg

    name = database_name(url)
    admin_url = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and recreate:
            print(f"dropping database {name}")
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            print(f"creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')


def check_schema() -> None:
    """Stop if the table lacks an index the model declares (a database migrated by an older 0001)."""
    from django.db import connection

    from jobs.models import Job

    with connection.cursor() as cursor:
        declared = {index.name for index in Job._meta.indexes}
        present = set(connection.introspection.get_constraints(cursor, Job._meta.db_table))
    missing = sorted(declared - present)
    if missing:
        sys.exit(
            f"The {Job._meta.db_table} table lacks indexes the model declares: {', '.join(missing)}. "
            "The database was migrated with an older migration; run again with --recreate-db."
        )


def ensure_owners(count: int) -> list[int]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    User = get_user_model()
    password = make_password(None)  # unusable: owners never log in
    User.objects.bulk_create(
        [
            User(username=f"{OWNER_PREFIX}{n:03d}", email=f"{OWNER_PREFIX}{n:03d}@example.com", password=password)
            for n in range(count)
        ],
        ignore_conflicts=True,
    )
    return list(
        User.objects.filter(username__startswith=OWNER_PREFIX).order_by("username").values_list("pk", flat=True)[:count]
    )


def reset() -> None:
    from django.db import connection

    from jobs.models import Job

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Orders and events point at jobs; in the bench database they go too.
            cursor.execute(f"TRUNCATE {Job._meta.db_table} CASCADE")
    else:
        Job.objects.all().delete()


def copy_rows(rows: Iterator[dict[str, Any]], columns: list[str]) -> None:
    """COPY the rows into the job table (PostgreSQL) or executemany them (SQLite)."""
    from django.db import connection, transaction

    from jobs.models import Job

    fields = {field.column: field for field in Job._meta.concrete_fields}
    json_columns = {column for column, field in fields.items() if field.get_internal_type() == "JSONField"}
    # Columns the factory does not know (added since) get the model's default.
    defaults = {column: field.get_default() for column, field in fields.items()}
    table = Job._meta.db_table

    def values(row: dict[str, Any]) -> list[Any]:
        out = []
        for c in columns:
            value = row[c] if c in row else defaults[c]
            out.append((json.dumps(value) if value is not None else None) if c in json_columns else value)
        return out

    with transaction.atomic():
        if connection.vendor == "postgresql":
            connection.ensure_connection()
            raw = connection.connection
            sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
            with raw.cursor() as cursor, cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(values(row))
        else:
            placeholders = ", ".join(["%s"] * len(columns))
            ops = connection.ops

            def adapt(value: Any) -> Any:
                if isinstance(value, uuid.UUID):
                    return value.hex
                if isinstance(value, datetime):
                    return ops.adapt_datetimefield_value(value)
                return value

            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",
                    [[adapt(value) for value in values(row)] for row in rows],
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=50_000, help="rows per COPY and transaction")
    parser.add_argument("--owners", type=int, default=200)
    parser.add_argument("--days", type=int, default=90, help="finished jobs are spread over this many days")
    parser.add_argument(
        "--ttl-days", type=int, default=100,
        help="expires_at = finished_at + this (longer than --days, so the table is a steady state)",
    )  # fmt: skip
    parser.add_argument(
        "--order", choices=["created", "random"], default="created",
        help="physical row order: created (append-only table) or random (space reused after TTL purges)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--reset", action="store_true", help="empty the job table first")
    parser.add_argument("--recreate-db", action="store_true", help="PostgreSQL: drop and create the database first")
    args = parser.parse_args()

    url = os.environ["DATABASE_URL"]
    is_sqlite = url.startswith("sqlite")
    if is_sqlite and args.rows > SQLITE_MAX_ROWS:
        sys.exit(f"Refusing to put {args.rows} rows in SQLite; use --rows {SQLITE_MAX_ROWS} or fewer, or PostgreSQL.")
    name = database_name(url)
    if "bench" not in Path(name).name:
        sys.exit(f"Refusing to fill {name!r}: the database name must contain 'bench'.")
    if not is_sqlite:
        ensure_postgres_database(url, recreate=args.recreate_db)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from jobs.models import Job

    call_command("migrate", verbosity=0)
    if connection.vendor == "postgresql":
        check_schema()
    if args.reset:
        reset()
    owner_ids = ensure_owners(args.owners)
    before = Job.objects.count()
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}, jobs before: {before}")

    columns = [field.column for field in Job._meta.concrete_fields]
    factory = JobFactory(
        owner_ids=owner_ids, now=timezone.now(), days=args.days, ttl_days=args.ttl_days, seed=args.seed + before
    )
    start = time.perf_counter()
    plan = factory.plan(args.rows, order=args.order)
    names = [name for name, _ in STATUSES]
    print(f"  planned {args.rows:,} jobs in {time.perf_counter() - start:.1f} s")
    done = 0
    while done < args.rows:
        size = min(args.chunk, args.rows - done)
        copy_rows(
            (factory.row(datetime.fromtimestamp(ts, tz=UTC), names[status]) for ts, status in plan[done : done + size]),
            columns,
        )
        done += size
        elapsed = time.perf_counter() - start
        print(f"  {done:>9,} rows  {elapsed:6.1f} s  {done / elapsed:8,.0f} rows/s", flush=True)
    load = time.perf_counter() - start

    analyse_start = time.perf_counter()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"VACUUM (ANALYZE) {Job._meta.db_table}")
        else:
            cursor.execute("ANALYZE")
    analyse = time.perf_counter() - analyse_start
    print(
        f"inserted {done:,} jobs in {load:.1f} s ({done / load:,.0f} rows/s); "
        f"vacuum/analyse {analyse:.1f} s; jobs now: {Job.objects.count():,}"
    )
    counts = dict(Job.objects.order_by().values_list("status").annotate(n=django.db.models.Count("pk")))
    stuck = Job.objects.processing().filter(started_at__lt=timezone.now() - STUCK_AFTER).count()
    print(
        "by status: " + ", ".join(f"{status} {count:,}" for status, count in sorted(counts.items()))
        + f"; processing for over {STUCK_AFTER}: {stuck:,}"
    )


if __name__ == "__main__":
    main()
