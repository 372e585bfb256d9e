"""End-to-end no-op jobs/s of this project's job layer against its peers, in one invocation.

Usage (from the repository root)::

    .venv/bin/python bench/throughput.py                       # every system, 2000 jobs, 3 rounds
    .venv/bin/python bench/throughput.py --jobs 300 --rounds 1 --systems project-orm,floor
    .venv/bin/python bench/throughput.py --paced 500 --pace-ms 50 --idle-seconds 10
    .venv/bin/python bench/throughput.py --install-peers --json var/throughput.json

Systems: project-db, project-orm, project-redis, project-sqlite (this project, by
``JOBS_BROKER``), q2-orm, q2-redis (django-q2 alone), procrastinate, celery, floor
(a bare SKIP LOCKED queue, ``bench/floor.py``). Each round runs every system in
turn (the order rotates by round); each run gets a fresh database, two workers,
and a separate submitter process. Once the workers are warm it measures the idle
cluster's CPU (``--idle-seconds``), then submits ``--jobs`` no-op jobs back to back
(the burst: jobs/s, statements, CPU per job), then, once those are finished,
``--paced`` jobs one every ``--pace-ms`` ms (the pickup a lone job sees).
Medians over rounds are printed as a markdown table, with the ratios of our
systems to the peers, the load average before and after, and the command.

It starts its own PostgreSQL (initdb in a temporary directory, a free port,
pg_stat_statements) and Redis (a free port, no persistence) unless
``BENCH_DATABASE_URL`` (a database whose name contains "bench": the run databases
are named after it) or ``BENCH_REDIS_URL`` are set, and stops all it started by
PID and process group, on failure and Ctrl-C too. Logs: ``var/throughput/`` (``--log-dir``).
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import tp_report  # noqa: E402 - needs ROOT on the path
from bench.tp_infra import (  # noqa: E402
    BenchError, PrivatePostgres, PrivateRedis, Processes, database_name, loadavg, postmaster_pid,
    redis_pid, with_database,
)  # fmt: skip
from bench.tp_run import Bench, StartListener, run_one  # noqa: E402
from bench.tp_systems import SYSTEMS  # noqa: E402

LOG_DIR = ROOT / "var" / "throughput"
OWN_LOGS = ("-prepare.log", "-workers.log", "-submitter.log", "-submits.json", "postgres.log", "redis.log")
ROLES = ("bench_submit", "bench_worker", "bench_monitor")


def parse_args() -> argparse.Namespace:
    names = [s.name for s in SYSTEMS]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default=",".join(names), help="comma-separated, from: " + ", ".join(names))
    parser.add_argument("--jobs", type=int, default=2000, help="burst jobs per run (default 2000)")
    parser.add_argument("--paced", type=int, default=200, help="paced jobs per run, after the burst (default 200)")
    parser.add_argument("--pace-ms", type=float, default=20.0, help="ms between paced submits (default 20)")
    parser.add_argument("--idle-seconds", type=float, default=5.0,
                        help="idle CPU window before the burst, seconds (default 5; 0: none)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--warmups", type=int, default=2, help="warm-up jobs before each run (default 2)")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--log-dir", type=Path, default=LOG_DIR, help="emptied first (default var/throughput)")
    parser.add_argument("--install-peers", action="store_true", help="pip install -r bench/requirements.txt first")
    args = parser.parse_args()
    args.systems = [name.strip() for name in args.systems.split(",") if name.strip()]
    unknown = sorted(set(args.systems) - set(names))
    if unknown:
        parser.error(f"unknown systems: {', '.join(unknown)}")
    if args.jobs < 1 or args.rounds < 1:
        parser.error("--jobs and --rounds must be at least 1")
    if args.paced < 0 or args.pace_ms < 0 or args.idle_seconds < 0:
        parser.error("--paced, --pace-ms and --idle-seconds cannot be negative")
    return args


def create_roles(admin_url: str) -> bool:
    """Superuser login roles per side, so statement counts split; False if not allowed."""
    import psycopg

    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            for role in ROLES:
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
                if not exists:
                    conn.execute(f"CREATE ROLE {role} SUPERUSER LOGIN")
        return True
    except psycopg.Error as exc:
        print(f"note: cannot create the roles {ROLES} ({exc}); statements will not split by side")
        return False


def has_pg_stat_statements(admin_url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute("SELECT count(*) FROM pg_stat_statements")
        return True
    except psycopg.Error as exc:
        print(f"note: pg_stat_statements cannot be read ({str(exc).splitlines()[0]}); no statement counts")
        return False


def start_servers(procs: Processes, need_pg: bool, need_redis: bool, log_dir: Path) -> dict[str, Any]:
    found: dict[str, Any] = {"admin_url": None, "prefix": "tp_bench", "redis_url": None, "private_redis": False}
    external_pg = os.environ.get("BENCH_DATABASE_URL")
    if need_pg and external_pg:
        name = database_name(external_pg)
        if "bench" not in name:
            raise BenchError(f"refusing BENCH_DATABASE_URL database {name!r}: the name must contain 'bench'")
        found.update(admin_url=with_database(external_pg, "postgres"), prefix=name)
    elif need_pg:
        pg = PrivatePostgres(procs, log_dir)
        found["stop_pg"] = pg.stop
        pg.start()
        found["admin_url"] = pg.url
    external_redis = os.environ.get("BENCH_REDIS_URL")
    if need_redis and external_redis:
        found["redis_url"] = external_redis
    elif need_redis:
        redis = PrivateRedis(procs, log_dir)
        found["stop_redis"] = redis.stop
        redis.start()
        found.update(redis_url=redis.url, private_redis=True)
    return found


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM stops like Ctrl-C: through the finally blocks


def main() -> int:
    args = parse_args()
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    load_start = loadavg()
    for sig in (signal.SIGINT, signal.SIGTERM):  # even when started in the background (SIGINT ignored)
        signal.signal(sig, _interrupt)
    if args.install_peers:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(ROOT / "bench" / "requirements.txt")],
                       check=True)  # fmt: skip
    log_dir = args.log_dir.resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    for old in log_dir.iterdir():  # the bench's own logs only: --log-dir may name any directory
        if old.is_file() and old.name.endswith(OWN_LOGS):
            old.unlink()

    chosen = [s for s in SYSTEMS if s.name in args.systems]
    results: dict[str, list[dict[str, Any]]] = {s.name: [] for s in chosen}
    blocked = {s.name: s.unavailable() for s in chosen}
    runnable = [s for s in chosen if not blocked[s.name]]
    procs = Processes()
    servers: dict[str, Any] = {}
    sqlite_dir = Path(tempfile.mkdtemp(prefix="bench_sqlite_"))
    try:
        servers = start_servers(procs, any(s.uses_pg for s in runnable), any(s.uses_redis for s in runnable),
                                log_dir)  # fmt: skip
        udp = StartListener()
        bench = Bench(
            procs=procs, admin_url=servers["admin_url"], db_prefix=servers["prefix"],
            redis_url=servers["redis_url"], private_redis=servers["private_redis"], log_dir=log_dir, udp=udp,
            sqlite_dir=sqlite_dir / "db",
        )  # fmt: skip
        if bench.admin_url:
            # Roles per side only on the private server: the bench does not add roles to yours.
            bench.roles = "stop_pg" in servers and create_roles(bench.admin_url)
            bench.pgss = has_pg_stat_statements(bench.admin_url)
            bench.pg_pid = postmaster_pid(bench.admin_url)
            bench.private_pg = "stop_pg" in servers
        if bench.redis_url:
            bench.redis_pid = redis_pid(bench.redis_url)
        for round_no in range(1, args.rounds + 1):
            shift = (round_no - 1) % max(1, len(runnable))
            for system in runnable[shift:] + runnable[:shift]:
                started = time.monotonic()
                print(f"round {round_no}: {system.name} ...", end=" ", flush=True)
                try:
                    result = run_one(bench, system, round_no, args.jobs, args.warmups, paced=args.paced,
                                     pace_ms=args.pace_ms, idle_seconds=args.idle_seconds)  # fmt: skip
                    print(f"{result['jobs_per_s']:.1f} jobs/s ({time.monotonic() - started:.0f} s)", flush=True)
                except BenchError as exc:
                    result = {"error": f"failed: {exc}"}
                    print(result["error"], flush=True)
                except Exception as exc:  # a peer's own error: report it, go on with the others
                    result = {"error": f"failed: {type(exc).__name__}: {exc}"}
                    print(result["error"], flush=True)
                results[system.name].append(result)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # let the clean-up finish
            signal.signal(sig, signal.SIG_IGN)
        procs.stop_all()
        for key in ("stop_redis", "stop_pg"):
            if key in servers:
                servers[key]()
        import shutil

        shutil.rmtree(sqlite_dir, ignore_errors=True)

    summary = {}
    for system in chosen:
        summary[system.name] = {"status": blocked[system.name], "errors": []} if blocked[system.name] else (
            tp_report.summarize(results[system.name]))  # fmt: skip
    uses = {s.name: (s.uses_pg, s.uses_redis) for s in chosen}
    ratio_table, ratio_data = tp_report.ratios(summary)
    load_end = loadavg()
    print()
    print(f"Per run, 2 workers per system: an idle window of {args.idle_seconds:g} s, a burst of {args.jobs} no-op jobs "
          f"submitted back to back (jobs/s, burst pickup, submit, statements, write txns and CPU per job: this "
          f"burst only), then {args.paced} jobs one every {args.pace_ms:g} ms (paced pickup). Medians over "
          f"{args.rounds} round(s).\n")  # fmt: skip
    print(tp_report.table(summary, uses))
    print("\n" + tp_report.RATIOS_CAPTION + "\n")
    print(ratio_table)
    print(f"\nload average (1/5/15 min): start {load_start}, end {load_end}")
    print(f"command: {command}")
    if args.json:
        args.json.write_text(json.dumps({
            "command": command, "jobs": args.jobs, "rounds": args.rounds, "warmups": args.warmups,
            "paced": args.paced, "pace_ms": args.pace_ms, "idle_seconds": args.idle_seconds,
            "loadavg_start": load_start, "loadavg_end": load_end, "summary": summary,
            "ratios": ratio_data, "runs": results,
        }, indent=2, default=str))  # fmt: skip
    return 0 if all(m["status"] == "ok" or m["status"].startswith("skipped") for m in summary.values()) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except BenchError as exc:
        sys.exit(f"{Path(__file__).name}: {exc}")
