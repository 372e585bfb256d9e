"""One run of one system for ``bench/throughput.py``: fresh database, workers, submitter, figures.

With the workers up and the warm-up jobs run, a run has three phases, all on the
same workers: an idle window (the cluster's CPU doing nothing), the burst (``--jobs``
submitted back to back) and, once the burst is recorded finished, the paced phase
(``--paced`` jobs, one every ``--pace-ms``), whose pickup is the one quoted as "paced".
The burst is the measured window: it opens when the submitter is told to go and
closes when every burst job is recorded finished; jobs/s, statements (from
pg_stat_statements, reset at its start, the bench's own queries left out), write
transactions and CPU per job cover it alone. Commits come from
``pg_stat_database.xact_commit`` over the whole life of the workers (start-up, idle
window, paced phase and shut-down included: an idle backend reports its counts up
to 10 s late, an exiting one at once), less the bench's own transactions.
"""

from __future__ import annotations

import json
import queue
import secrets
import shutil
import socket
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.tp_infra import BenchError, Processes, recreate_database, redis_client, wait_for, with_database
from bench import tp_pgstats as pgstats
from bench.tp_phases import cpu_now, idle_cpu, percentile, pickups, wait_done
from bench.tp_systems import PY, ROOT, Monitor, System, Target

class StartListener:
    """Receives the handlers' ``"<label> <time>"`` datagrams; keeps the first time per label."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.runs: dict[str, dict[str, float]] = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                label, stamp = self.sock.recv(512).decode().split()
            except (OSError, ValueError):
                if self.sock.fileno() < 0:
                    return
                continue
            with self.lock:
                self.runs.setdefault(label.rsplit("-", 1)[0], {}).setdefault(label, float(stamp))

    def starts(self, run: str) -> dict[str, float]:
        with self.lock:
            return dict(self.runs.get(run, {}))


@dataclass
class Bench:
    """What every run shares: processes, servers, the UDP listener, the roles."""

    procs: Processes
    admin_url: str | None  # the PostgreSQL server's maintenance database, as a superuser
    db_prefix: str
    redis_url: str | None
    private_redis: bool
    log_dir: Path
    udp: StartListener
    roles: bool = False
    pgss: bool = False  # pg_stat_statements is there to read
    pg_pid: int | None = None
    private_pg: bool = False  # the PostgreSQL server is the bench's own (its idle CPU is this run's)
    redis_pid: int | None = None
    sqlite_dir: Path = field(default_factory=lambda: Path("/tmp"))

    def admin(self) -> psycopg.Connection:
        assert self.admin_url
        return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10)

    def role(self, name: str) -> str | None:
        return name if self.roles else None


def _prepare(bench: Bench, system: System, target: Target, log: Path) -> None:
    env = {**clean_env(), **system.env(target, None)}
    result = subprocess.run(system.prepare_cmd(), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["?"]
        raise BenchError(f"prepare failed ({result.returncode}): {tail[0][:200]} (log {log})")


def clean_env() -> dict[str, str]:
    import os

    drop = {"DATABASE_URL", "REDIS_URL", "JOBS_BROKER", "DJANGO_SETTINGS_MODULE", "DB_POOL_MAX_SIZE",
            "DB_CONN_MAX_AGE", "Q_WORKERS", "JOBS_HANDLER_MODULES", "PROCRASTINATE_DSN", "FLOOR_DSN"}  # fmt: skip
    return {key: value for key, value in os.environ.items() if key not in drop}


def _lines(stream: Any) -> queue.Queue:
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _expect(lines: queue.Queue, prefix: str, timeout: float, log: Path) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            raise BenchError(f"the submitter exited before {prefix!r} (log {log})")
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    raise BenchError(f"no {prefix!r} from the submitter within {timeout:.0f} s (log {log})")


def run_one(bench: Bench, system: System, round_no: int, jobs: int, warmups: int, *, paced: int = 0,
            pace_ms: float = 20.0, idle_seconds: float = 0.0) -> dict[str, Any]:  # fmt: skip
    run = f"r{round_no}_{system.name.replace('-', '_')}_{secrets.token_hex(2)}"
    name = f"{system.name}-r{round_no}"
    db = f"{bench.db_prefix}_{system.name.replace('-', '_')}"
    sqlite_path = bench.sqlite_dir / f"{db}.sqlite3"
    target = Target(
        pg_url=lambda role: with_database(bench.admin_url, db, role) if bench.admin_url else "",
        redis_url=bench.redis_url, sqlite_path=sqlite_path if system.sqlite else None, udp=bench.udp.address,
    )  # fmt: skip
    children: list[subprocess.Popen] = []
    monitor: Monitor | None = None
    out_file = bench.log_dir / f"{name}-submits.json"
    paced_file = bench.log_dir / f"{name}-paced-submits.json"
    try:
        if system.sqlite:
            shutil.rmtree(bench.sqlite_dir, ignore_errors=True)
            bench.sqlite_dir.mkdir(parents=True)
        else:
            recreate_database(bench.admin_url or "", db)
        if system.uses_redis:
            client = redis_client(bench.redis_url or "")
            client.flushall() if bench.private_redis else client.flushdb()
        _prepare(bench, system, target, bench.log_dir / f"{name}-prepare.log")
        xact_before = pgstats.xact_commit(bench.admin, db) if system.uses_pg else 0

        worker_log = bench.log_dir / f"{name}-workers.log"
        env = {**clean_env(), **system.env(target, bench.role("bench_worker"))}
        workers = bench.procs.start(system.worker_cmd(), log=worker_log, cwd=ROOT, env=env)
        children.append(workers)
        monitor = Monitor(system, target, bench.role("bench_monitor"))
        sub_log = bench.log_dir / f"{name}-submitter.log"
        env = {**clean_env(), **system.env(target, bench.role("bench_submit"))}
        cmd = [PY, "-m", "bench.tp_submit", system.kind, "--jobs", str(jobs), "--run", run,
               "--warmups", str(warmups), "--out", str(out_file),
               "--paced", str(paced), "--pace-ms", str(pace_ms), "--paced-out", str(paced_file)]  # fmt: skip
        with open(sub_log, "wb") as err:
            submitter = bench.procs.start(cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=err, text=True)  # fmt: skip
        children.append(submitter)
        lines = _lines(submitter.stdout)
        info = json.loads(_expect(lines, "BENCH ready", 180, sub_log) or "{}")

        warm = [f"{run}-w{k}" for k in range(warmups)]

        def warmed() -> bool:
            if workers.poll() is not None:
                raise BenchError(f"the workers exited ({workers.returncode}); log {worker_log}")
            starts = bench.udp.starts(run)
            return all(label in starts for label in warm) and system.done(monitor, warmups, warm)[0]

        wait_for(warmed, timeout=120, what=f"the warm-up jobs (worker log {worker_log})", every=0.1)
        idle = idle_cpu(bench, workers, idle_seconds, system.uses_pg and bench.private_pg)
        if system.uses_pg:
            if bench.pgss:
                with bench.admin() as conn:
                    conn.execute("SELECT pg_stat_statements_reset()")
            xid0 = pgstats.next_xid(bench.admin)
        cpu0 = cpu_now(bench, workers.pid)
        submitter.stdin.write("go\n")
        submitter.stdin.flush()
        watch = [(workers, "workers"), (submitter, "submitter")]
        burst_labels = [f"{run}-{i}" for i in range(jobs)]
        last_finish, order = wait_done(bench, system, monitor, run, burst_labels, jobs + warmups, warm, watch,
                                       worker_log)  # fmt: skip
        cpu1 = cpu_now(bench, workers.pid)
        statements = pgstats.statements(bench.admin, db) if system.uses_pg and bench.pgss else None
        xids = pgstats.next_xid(bench.admin) - xid0 if system.uses_pg else None
        _expect(lines, "BENCH done", 120, sub_log)
        paced_labels = [f"{run}-p{i}" for i in range(paced)]
        if paced:
            submitter.stdin.write("paced\n")
            submitter.stdin.flush()
            deadline = time.monotonic() + paced * pace_ms / 1000 + 120
            wait_done(bench, system, monitor, run, paced_labels, jobs + warmups + paced, order, watch, worker_log,
                      deadline=deadline)  # fmt: skip
            _expect(lines, "BENCH paced done", 60, sub_log)
        wait_for(lambda: submitter.poll() is not None, timeout=60, what="the submitter to exit")
        bench.procs.stop(workers)
        monitor.close()
        xact_after = pgstats.xact_commit(bench.admin, db) if system.uses_pg else None
        submits = json.loads(out_file.read_text())
        starts = bench.udp.starts(run)
        first = submits["before"][0]
        burst = pickups(submits["before"], burst_labels, starts)
        cpu = {key: (cpu1[key] - cpu0[key]) / jobs * 1000 for key in cpu0 if cpu0[key] is not None}
        cpu["submitter"] = submits["cpu"] / jobs * 1000
        result: dict[str, Any] = {
            "jobs_per_s": jobs / (last_finish - first),
            "seconds": last_finish - first,
            "burst_pickup_p50_ms": _ms(percentile(burst, 50)),
            "burst_pickup_p95_ms": _ms(percentile(burst, 95)),
            "submit_p50_ms": statistics.median(submits["durations"]) * 1000,
            "lost_datagrams": jobs - len(burst),
            "cpu_ms_per_job": cpu,
            "idle_cpu_pct": idle,
            "submitter_info": info,
        }
        if paced:
            paced_submits = json.loads(paced_file.read_text())
            late = pickups(paced_submits["before"], paced_labels, starts)
            span = paced_submits["before"][-1] - paced_submits["before"][0]
            result.update({
                "paced_pickup_p50_ms": _ms(percentile(late, 50)), "paced_pickup_p95_ms": _ms(percentile(late, 95)),
                "paced_pickup_p99_ms": _ms(percentile(late, 99)),
                "paced_submit_p50_ms": statistics.median(paced_submits["durations"]) * 1000,
                "paced_submits_per_s": (paced - 1) / span if paced > 1 and span > 0 else None,
                "paced_lost_datagrams": paced - len(late),
            })  # fmt: skip
        if statements is not None:
            result["statements"] = statements
            result["stmts_per_job"] = statements["total"] / jobs
            result["stmts_per_job_by_role"] = {k: v / jobs for k, v in statements["by_role"].items()}
            result["fk_checks_per_job"] = statements["fk_checks"] / jobs
        if xact_after is not None and xids is not None:
            result["commits"] = xact_after - xact_before - monitor.transactions
            result["commits_per_job"] = result["commits"] / (jobs + warmups + paced)
            result["write_txns_per_job"] = xids / jobs
        return result
    finally:
        for child in reversed(children):
            bench.procs.stop(child)
        if monitor is not None:
            try:
                monitor.close()
            except Exception:
                pass


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
