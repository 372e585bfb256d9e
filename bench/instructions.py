"""Instructions per operation on the hot paths, counted by valgrind: figures a noisy machine cannot move.

Usage (from the repository root; needs ``valgrind``, as on Debian's package)::

    .venv/bin/python bench/instructions.py                       # every operation, 500 each
    .venv/bin/python bench/instructions.py --ops poll304,constant -n 1000

Timings on this shared 2-core machine swing by a third from one minute to the next;
instruction counts do not (two runs of the same code agree within about 1 %). So an
A/B comparison of a change to the poll, the submit or the worker's run is best made
here, and the end-to-end benches (``poll.py``, ``throughput.py``) then say what it is
worth. What is counted is the Python process alone: not PostgreSQL, not the kernel,
not time spent waiting.

For each operation the script runs a child process twice under
``valgrind --tool=callgrind``: once with its set-up and warm-up only, once with N more
operations; the difference over N is the cost of one operation. The operations:

- ``constant``: ``GET /bench/constant/`` through ``project.asgi.application`` (the ASGI
  handler, its thread pool and the whole middleware chain, without a server);
- ``poll304`` / ``poll200``: ``GET /api/jobs/{id}/`` with a Bearer token, with and without
  ``If-None-Match``, the same way;
- ``submit``: ``jobs.submit()`` of the no-op kind of ``bench/handlers.py`` (row, event,
  the broker of the settings: the job table on PostgreSQL);
- ``run``: ``jobs.runner.run_job()`` of such a pending job (claim, handler, finish).

It uses the PostgreSQL database of ``BENCH_DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/instructions_bench``; the name must contain "bench"),
dropped, created and migrated afresh with ``bench.settings``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OPS = ("constant", "poll304", "poll200", "submit", "run")
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/instructions_bench"
WARMUP = 100


def child(op: str, count: int) -> None:
    """(Under valgrind) set up, warm up, then do ``op`` ``count`` times."""
    import django

    django.setup()
    if op in ("submit", "run"):
        _jobs(op, count)
    else:
        asyncio.run(_requests(op, count))


async def _requests(op: str, count: int) -> None:
    from asgiref.sync import sync_to_async

    from project.asgi import application

    key, job_id = await sync_to_async(_poll_fixture)()
    auth = {"authorization": f"Bearer {key}"}
    path, headers, expect = "/bench/constant/", {}, 200
    if op != "constant":
        path = f"/api/jobs/{job_id}/"
        status, answer = await _get(application, path, auth)
        headers = {**auth, "if-none-match": answer["etag"]} if op == "poll304" else auth
        expect = 304 if op == "poll304" else 200
    for _ in range(WARMUP + count):
        status, _answer = await _get(application, path, headers)
        if status != expect:
            raise SystemExit(f"{op}: {path} answered {status}, not {expect}")


async def _get(application: Any, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *((k.encode(), v.encode()) for k, v in headers.items())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    started: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)

    await application(scope, receive, send)
    return started["status"], {k.decode().lower(): v.decode() for k, v in started["headers"]}


def _poll_fixture() -> tuple[str, str]:
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from jobs.models import Job

    user, _ = get_user_model().objects.get_or_create(username="instructions-bench")
    token, _ = Token.objects.get_or_create(user=user)
    now = timezone.now()
    job = Job.objects.create(
        kind="bench.noop", owner=user, status="completed", payload={"label": "x"}, result={"ok": True},
        attempts=1, progress_percentage=100, created_at=now, started_at=now, finished_at=now, updated_at=now,
        expires_at=now + timedelta(days=1),
    )  # fmt: skip
    connections.close_all()  # the handler's threads take their own from the pool
    return token.key, str(job.pk)


def _jobs(op: str, count: int) -> None:
    import bench.tp_probe
    from django.utils import timezone

    from jobs import submit
    from jobs.models import Job
    from jobs.runner import run_job

    bench.tp_probe.report_started = lambda label: None  # no bench listens for the handler's datagram
    import bench.handlers  # noqa: F401 - registers bench.noop

    if op == "submit":
        for n in range(WARMUP + count):
            submit("bench.noop", {"label": f"i{n}"}, owner=None)
        return
    # Both runs create the same rows (count included), so the difference is the runs alone.
    now = timezone.now()
    rows = WARMUP + int(os.environ["INSTRUCTIONS_ROWS"])
    jobs = Job.objects.bulk_create(
        [Job(kind="bench.noop", payload={"label": "i"}, created_at=now, updated_at=now) for _ in range(rows)]
    )
    for job in jobs[: WARMUP + count]:
        if run_job(str(job.pk), job.kind) != "completed":
            raise SystemExit(f"run: job {job.pk} did not complete")


def count_instructions(op: str, count: int, env: dict[str, str], rows: int) -> int:
    """Instructions valgrind counted in a child doing ``op`` ``count`` times (after its set-up)."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
               str(Path(__file__).resolve()), "--child", op, "-n", str(count)]  # fmt: skip
    result = subprocess.run(
        command, cwd=ROOT, env={**env, "INSTRUCTIONS_ROWS": str(rows)}, capture_output=True, text=True, timeout=1800
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or not found:
        raise SystemExit(f"{op} (n={count}) failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", default=",".join(OPS), help=f"comma-separated, from: {', '.join(OPS)}")
    parser.add_argument("-n", type=int, default=500, help="operations counted per child (default 500)")
    parser.add_argument("--child", choices=OPS, help=argparse.SUPPRESS)  # internal: the counted process
    args = parser.parse_args()
    if args.child:
        child(args.child, args.n)
        return 0

    from bench.tp_infra import database_name, loadavg, recreate_database, with_database

    ops = [op.strip() for op in args.ops.split(",") if op.strip()]
    unknown = sorted(set(ops) - set(OPS))
    if unknown or not ops:
        parser.error(f"unknown operation(s) {unknown}; choose from {', '.join(OPS)}")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    recreate_database(with_database(url, "postgres"), database_name(url))
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DB_POOL_MAX_SIZE", "DB_CONN_MAX_AGE"}},
        "DJANGO_SETTINGS_MODULE": "bench.settings", "DJANGO_SECRET_KEY": "bench", "DATABASE_URL": url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "API_THROTTLE_POLL": "100000000/min", "PYTHONPATH": str(ROOT),
        "JOBS_HANDLER_MODULES": "bench.handlers",
    }  # fmt: skip
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "--verbosity", "0"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    if migrate.returncode != 0:
        raise SystemExit(f"migrate failed: {migrate.stderr[-2000:]}")

    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    print(f"{args.n} operations each, instructions of the Python process (valgrind callgrind):\n")
    print("| operation | k instructions per operation | x constant |")
    print("| --- | --- | --- |")
    per_op: dict[str, float] = {}
    for op in ops:
        # Once without valgrind: bytecode compiled now is not counted in the base run.
        warm = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", op, "-n", "1"],
                              cwd=ROOT, env={**env, "INSTRUCTIONS_ROWS": "1"}, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        if warm.returncode != 0:
            raise SystemExit(f"{op} failed:\n{warm.stdout[-2000:]}{warm.stderr[-3000:]}")
        base = count_instructions(op, 0, env, rows=args.n)
        full = count_instructions(op, args.n, env, rows=args.n)
        per_op[op] = (full - base) / args.n / 1000
        ratio = f"{per_op[op] / per_op['constant']:.2f}" if "constant" in per_op else "-"
        print(f"| {op} | {per_op[op]:,.0f} | {ratio} |", flush=True)
    print(f"\nload average (1/5/15 min): {loadavg()} (it does not move the counts)\ncommand: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
