"""The status poll against a constant view, under the production server (uvicorn, PostgreSQL).

Usage (from the repository root)::

    .venv/bin/python bench/poll.py                     # 3 rounds x 10 s per kind, 16 connections
    .venv/bin/python bench/poll.py --duration 5 --rounds 1 --web-workers 2 --json var/poll.json

It starts its own PostgreSQL (or uses ``BENCH_DATABASE_URL``, whose database name
must contain "bench"), creates the database ``poll_bench`` (or the one named in that
URL) afresh, migrates it with ``bench.settings`` (the project's settings plus the
constant view of ``bench/urls.py``), creates one user with a token and one completed
job per connection, then serves it as the README's production command does:
``uvicorn project.asgi:application --workers N --lifespan off --http
project.http_protocol:LimitedHttpToolsProtocol``. Then, in interleaved
rounds, ``--connections`` keep-alive connections (threads, http.client, 127.0.0.1)
each send requests back to back for ``--duration`` seconds, one kind at a time:

    a. GET /bench/constant/                      expect 200 (no database, no authentication)
    b. GET /api/jobs/{id}/                       expect 200 (Bearer token, the job document)
    c. GET /api/jobs/{id}/ with If-None-Match    expect 304

and prints requests/s, p50/p99 latency, server CPU per request (uvicorn's process tree,
PostgreSQL's), errors, the ratios b/a and c/a, the load average and the command.
Everything started is stopped by PID (then process group), on failure and Ctrl-C too.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.tp_infra import (  # noqa: E402 - needs ROOT on the path
    BenchError, PrivatePostgres, Processes, database_name, free_port, loadavg, postmaster_pid,
    recreate_database, tree_cpu, wait_for, with_database,
)  # fmt: skip

LOG_DIR = ROOT / "var" / "poll"
KINDS = {"a": "constant view", "b": "job poll 200", "c": "job poll 304"}


def fixtures(count: int) -> None:
    """(In a subprocess with Django set up) users with tokens and a completed job each, as JSON."""
    import django

    django.setup()
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from jobs.models import Job

    now = timezone.now()
    made = []
    for n in range(count):
        user = get_user_model().objects.create_user(f"poll-bench-{n:02d}")
        token = Token.objects.create(user=user)
        job = Job.objects.create(
            kind="bench.noop", owner=user, status="completed", payload={"label": f"poll-{n}"},
            result={"ok": True, "n": n}, attempts=1, progress_percentage=100,
            created_at=now - timedelta(seconds=3), started_at=now - timedelta(seconds=2),
            finished_at=now - timedelta(seconds=1), updated_at=now, expires_at=now + timedelta(days=7),
        )  # fmt: skip
        made.append({"token": token.key, "job": str(job.pk)})
    print(json.dumps(made))


def request(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def client_run(port: int, plans: list[tuple[str, dict[str, str]]], expect: int, seconds: float) -> dict[str, Any]:
    """Each plan on its own keep-alive connection, back to back for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in plans]
    errors: list[list[str]] = [[] for _ in plans]
    start = threading.Barrier(len(plans) + 1)
    deadline = [0.0]

    def loop(i: int, path: str, headers: dict[str, str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        start.wait()
        while time.monotonic() < deadline[0]:
            tick = time.perf_counter()
            try:
                status, _, _ = request(conn, path, headers)
            except (OSError, http.client.HTTPException) as exc:
                errors[i].append(type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            latencies[i].append(time.perf_counter() - tick)
            if status != expect:
                errors[i].append(str(status))
        conn.close()

    threads = [threading.Thread(target=loop, args=(i, *plan), daemon=True) for i, plan in enumerate(plans)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + seconds
    start.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    elapsed = time.monotonic() - began
    flat = sorted(x for lat in latencies for x in lat)
    errs = [e for err in errors for e in err]
    return {
        "requests": len(flat), "seconds": elapsed, "errors": len(errs),
        "error_kinds": {e: errs.count(e) for e in sorted(set(errs))},
        "p50_ms": flat[len(flat) // 2] * 1000 if flat else None,
        "p99_ms": flat[min(len(flat) - 1, int(len(flat) * 0.99))] * 1000 if flat else None,
    }  # fmt: skip


def plans_for(kind: str, users: list[dict[str, Any]]) -> list[tuple[str, dict[str, str]]]:
    plans = []
    for user in users:
        if kind == "a":
            plans.append(("/bench/constant/", {}))
        else:
            headers = {"Authorization": f"Bearer {user['token']}"}
            if kind == "c":
                headers["If-None-Match"] = user["etag"]
            plans.append((f"/api/jobs/{user['job']}/", headers))
    return plans


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per kind and round (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive client connections (default 16)")
    parser.add_argument("--web-workers", type=int, default=3, help="uvicorn --workers (default 3)")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--fixtures", type=int, help=argparse.SUPPRESS)  # internal: the set-up subprocess
    args = parser.parse_args()
    if args.fixtures:
        fixtures(args.fixtures)
        return 0

    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    load_start = loadavg()
    for sig in (signal.SIGINT, signal.SIGTERM):  # even when started in the background (SIGINT ignored)
        signal.signal(sig, _interrupt)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    procs = Processes()
    pg: PrivatePostgres | None = None
    try:
        external = os.environ.get("BENCH_DATABASE_URL")
        if external:
            db = database_name(external)
            admin_url = with_database(external, "postgres")
        else:
            pg = PrivatePostgres(procs, LOG_DIR)
            pg.start()
            db, admin_url = "poll_bench", pg.url
        recreate_database(admin_url, db)
        env = {
            **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DB_POOL_MAX_SIZE", "DB_CONN_MAX_AGE"}},
            "DJANGO_SETTINGS_MODULE": "bench.settings", "DJANGO_SECRET_KEY": "bench",
            "DATABASE_URL": with_database(admin_url, db), "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # Polled back to back, far above a real client's rate: the throttle still runs, never refuses.
            "API_THROTTLE_POLL": "100000000/min", "PYTHONPATH": str(ROOT),
        }  # fmt: skip
        run = lambda cmd: subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)  # noqa: E731
        result = run([sys.executable, "manage.py", "migrate", "--no-input", "--verbosity", "0"])
        if result.returncode != 0:
            raise BenchError(f"migrate failed: {result.stderr[-2000:]}")
        result = run([sys.executable, str(Path(__file__).resolve()), "--fixtures", str(args.connections)])
        if result.returncode != 0:
            raise BenchError(f"fixtures failed: {result.stderr[-2000:]}")
        users = json.loads(result.stdout.strip().splitlines()[-1])

        port = free_port()
        server = procs.start(
            [sys.executable, "-m", "uvicorn", "project.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(args.web_workers), "--lifespan", "off",
             "--http", "project.http_protocol:LimitedHttpToolsProtocol"],
            log=LOG_DIR / "uvicorn.log", cwd=ROOT, env=env,
        )  # fmt: skip
        wait_for(lambda: _status(port, "/bench/constant/") == 200, timeout=60, what="uvicorn", every=0.2)
        for user in users:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            status, headers, _ = request(conn, f"/api/jobs/{user['job']}/", {"Authorization": f"Bearer {user['token']}"})
            conn.close()
            if status != 200 or "etag" not in {k.lower() for k in headers}:
                raise BenchError(f"GET /api/jobs/{user['job']}/ answered {status} without an ETag")
            user["etag"] = next(v for k, v in headers.items() if k.lower() == "etag")
        pg_pid = postmaster_pid(admin_url)
        for kind in KINDS:  # warm-up: every worker process and pool connection in use, not reported
            client_run(port, plans_for(kind, users), 304 if kind == "c" else 200, min(2.0, args.duration))

        runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        order = list(KINDS)
        for round_no in range(args.rounds):
            for kind in order[round_no % 3:] + order[: round_no % 3]:
                cpu0 = (tree_cpu(server.pid), tree_cpu(pg_pid) if pg_pid else None, _own_cpu())
                figures = client_run(port, plans_for(kind, users), 304 if kind == "c" else 200, args.duration)
                cpu1 = (tree_cpu(server.pid), tree_cpu(pg_pid) if pg_pid else None, _own_cpu())
                n = max(1, figures["requests"])
                figures["rps"] = figures["requests"] / figures["seconds"]
                figures["server_cpu_ms"] = (cpu1[0] - cpu0[0]) / n * 1000
                figures["pg_cpu_ms"] = (cpu1[1] - cpu0[1]) / n * 1000 if pg_pid else None
                figures["client_cpu_ms"] = (cpu1[2] - cpu0[2]) / n * 1000
                runs[kind].append(figures)
                print(f"round {round_no + 1}: {kind} ({KINDS[kind]}): {figures['rps']:.0f} requests/s, "
                      f"{figures['errors']} errors", flush=True)  # fmt: skip
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # let the clean-up finish
            signal.signal(sig, signal.SIG_IGN)
        procs.stop_all()
        if pg is not None:
            pg.stop()

    report(runs, args, load_start, command)
    return 0 if all(f["errors"] == 0 for kind in runs.values() for f in kind) else 1


def _med(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def report(runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace, load_start: str, command: str) -> None:
    keys = ("rps", "p50_ms", "p99_ms", "server_cpu_ms", "pg_cpu_ms", "client_cpu_ms")
    med = {kind: {key: _med(runs[kind], key) for key in keys} for kind in KINDS}
    for kind in KINDS:
        med[kind]["errors"] = sum(r["errors"] for r in runs[kind])
        med[kind]["requests"] = sum(r["requests"] for r in runs[kind])
        kinds: dict[str, int] = {}
        for r in runs[kind]:
            for e, c in r["error_kinds"].items():
                kinds[e] = kinds.get(e, 0) + c
        med[kind]["error_kinds"] = kinds

    def f(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    print(f"\n{args.connections} keep-alive connections, uvicorn --workers {args.web_workers}, "
          f"{args.rounds} round(s) x {args.duration:g} s per kind, medians over rounds:\n")  # fmt: skip
    print("| kind | requests/s | p50 ms | p99 ms | uvicorn CPU ms/request | PostgreSQL CPU ms/request "
          "| client CPU ms/request | requests | errors |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind, name in KINDS.items():
        m = med[kind]
        errs = f"{m['errors']}" + (f" {m['error_kinds']}" if m["error_kinds"] else "")
        print(f"| {kind}. {name} | {f(m['rps'], 0)} | {f(m['p50_ms'])} | {f(m['p99_ms'])} | {f(m['server_cpu_ms'])} "
              f"| {f(m['pg_cpu_ms'], 3)} | {f(m['client_cpu_ms'])} | {m['requests']:,} | {errs} |")  # fmt: skip
    ratios = {}
    for kind in ("b", "c"):
        ratios[f"{kind}/a"] = {key: (med[kind][key] / med["a"][key]) if med[kind][key] and med["a"][key] else None
                               for key in ("rps", "p50_ms", "server_cpu_ms")}  # fmt: skip
        r = ratios[f"{kind}/a"]
        print(f"\n{kind}/a: requests/s x{f(r['rps'])}, p50 x{f(r['p50_ms'])}, uvicorn CPU per request x{f(r['server_cpu_ms'])}",
              end="")  # fmt: skip
    load_end = loadavg()
    print(f"\n\nload average (1/5/15 min): start {load_start}, end {load_end}\ncommand: {command}")
    if args.json:
        args.json.write_text(json.dumps({"command": command, "loadavg_start": load_start, "loadavg_end": load_end,
                                         "median": med, "ratios": ratios, "runs": runs}, indent=2))  # fmt: skip


def _status(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        return request(conn, path, {})[0]
    finally:
        conn.close()


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except BenchError as exc:
        sys.exit(f"{Path(__file__).name}: {exc}")
