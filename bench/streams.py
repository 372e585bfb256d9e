"""Concurrent event streams: what N open streams cost one uvicorn worker process.

Usage (from the repository root)::

    .venv/bin/python bench/streams.py           # SQLite: var/bench_streams.sqlite3
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/jobs_bench_streams \\
        .venv/bin/python bench/streams.py
    .venv/bin/python bench/streams.py --streams 200 --jobs 20 --open-concurrency 0  # all at once

What it does, every run from scratch:

1. recreates the bench database (PostgreSQL: a database whose name contains
   "bench" on 127.0.0.1, dropped and created; SQLite: the file is deleted),
   migrates it with ``manage.py migrate`` in a subprocess and creates one user
   with a token;
2. starts one uvicorn worker process (``--workers 1``, as ``manage.py serve``
   runs it) in its own session, with its open-files limit raised;
3. submits ``--jobs`` sales reports with ``Prefer: respond-async``; no cluster
   runs yet, so they stay pending and nothing changes: the streams will be idle;
4. warms up (20 streams opened and dropped, 100 plain job GETs, whose server CPU
   is printed for scale), then measures the server idle without streams;
5. opens ``--streams`` event streams spread evenly over the jobs, each on its own
   connection, at most ``--open-concurrency`` being opened at a time (0: all at
   once); a refused one (503) is retried after its Retry-After, and counted;
6. reads the server's RSS, threads and CPU time (utime + stime) from /proc before
   and after opening them, and over ``--quiet`` seconds with every stream open
   (heartbeats every 15 s included); on PostgreSQL, also the connections to the
   bench database and the transactions committed in it meanwhile;
7. unless ``--no-complete``: starts ``manage.py qcluster`` (``--q-workers``,
   reports taking ``--report-delay`` s) and measures how soon each stream gets its
   terminal event after its job finished (the job's ``finished_at``), and the
   server's threads meanwhile;
8. stops uvicorn and the cluster by pid (SIGTERM to the main process, a bounded
   wait, then SIGKILL to its process group), on failure and Ctrl-C too.

The client is asyncio and the standard library, in this process. Exit status 0
when every stream stayed open through the quiet period and got its terminal
event, 1 otherwise, 2 when the set-up failed. Server logs: ``var/bench_streams/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.processes import stop_process_groups  # noqa: E402 - needs ROOT on the path
LOG_DIR = ROOT / "var" / "bench_streams"
SQLITE_PATH = ROOT / "var" / "bench_streams.sqlite3"
TERMINAL = {"completed", "failed", "cancelled"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


class SetupError(Exception):
    """The bench could not start (database, server or cluster)."""


# --- Database -------------------------------------------------------------------


def prepare_database(url: str, env: dict[str, str]) -> str:
    """Recreate and migrate the bench database; return a short description of it."""
    parts = urlsplit(url)
    if parts.scheme.startswith("postgres"):
        import psycopg

        name = parts.path.lstrip("/")
        if parts.hostname not in {"127.0.0.1", "localhost"} or "bench" not in name:
            raise SetupError(f"{url!r}: only a database named *bench* on 127.0.0.1 is used.")
        admin_url = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
            limit = conn.execute("SHOW max_connections").fetchone()[0]
        described = f"PostgreSQL {name} (max_connections {limit})"
    else:
        path = Path("/" + parts.path.lstrip("/"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        described = f"SQLite {path}"
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--no-input", "--verbosity", "0"],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if result.returncode != 0:
        raise SetupError(f"manage.py migrate failed:\n{result.stderr[-3000:]}")
    return described


def create_token() -> str:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_user(username="bench-streams")
    token = Token.objects.create(user=user).key
    connection.close()
    return token


def finished_times(job_ids: list[str]) -> dict[str, float]:
    """Each finished job's ``finished_at``, as a Unix time."""
    from django.db import connection

    from jobs.models import Job

    rows = Job.objects.filter(pk__in=job_ids).values_list("pk", "finished_at")
    found = {str(pk): at.timestamp() for pk, at in rows if at is not None}
    connection.close()
    return found


def postgres_activity(url: str) -> tuple[int, int] | None:
    """(other connections to the bench database, transactions committed in it); PostgreSQL only."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        return None
    import psycopg

    name = parts.path.lstrip("/")
    query = (
        "SELECT (SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = %(name)s),"
        " (SELECT xact_commit FROM pg_stat_database WHERE datname = %(name)s)"
    )
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        return conn.execute(query, {"name": name}).fetchone()


# --- Processes and /proc --------------------------------------------------------


def raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=raise_open_files_limit,
        )  # fmt: skip


def stop(children: list[subprocess.Popen], grace: float = 15.0) -> None:
    """SIGTERM to each main process, a bounded wait, then SIGKILL to each process group."""
    for child in stop_process_groups(children, grace=grace):
        print(f"  pid {child.pid} still running after {grace:.0f} s: killed its group")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Usage:
    """One reading of a process from /proc."""

    at: float
    rss_mb: float
    threads: int
    cpu: float  # seconds, user + system

    @classmethod
    def of(cls, pid: int) -> Usage:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as statm:
            rss_pages = int(statm.read().split()[1])
        with open(f"/proc/{pid}/status") as status:
            threads = next(int(line.split()[1]) for line in status if line.startswith("Threads:"))
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
        return cls(time.monotonic(), rss_pages * PAGE_KB / 1024, threads, cpu)


def http(port: int, method: str, path: str, token: str, body: bytes | None = None, **headers: str):
    """One JSON request; return status, headers and the decoded body."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.headers, json.loads(response.read() or b"null")


def wait_until(what: str, check: Callable[[], Any], *, timeout: float, child: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SetupError(f"pid {child.pid} exited ({child.returncode}) waiting for {what}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SetupError(f"{what}: not ready after {timeout:.0f} s")


# --- The streams ----------------------------------------------------------------


@dataclass
class Stream:
    """One event stream: when it opened, what it received."""

    job_id: str
    opened_at: float | None = None  # monotonic time of its first event
    refusals: int = 0
    events: int = 0
    heartbeats: int = 0
    terminal_at: float | None = None  # Unix time of its terminal event
    ended: bool = False  # the server ended the response
    error: str | None = None


async def chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """Yield the chunks of a chunked HTTP/1.1 body until its last one."""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return
        yield (await reader.readexactly(size + 2))[:-2]


async def connect(port: int, token: str, stream: Stream) -> tuple[Any, Any, int, str]:
    """Send the stream's request; return reader, writer, status and Retry-After."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
    writer.write(
        f"GET /api/jobs/{stream.job_id}/events/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    retry_after = next(
        (h.split(":", 1)[1].strip() for h in head if h.lower().startswith("retry-after:")), "1"
    )
    return reader, writer, int(head[0].split()[1]), retry_after


async def follow(
    port: int,
    token: str,
    stream: Stream,
    opening: asyncio.Semaphore | None,
    *,
    first_only: bool = False,
) -> None:
    """Open an event stream (503s retried) and read it to its end, or to its first event."""
    writer = None
    held = False
    try:
        while True:
            if opening is not None:
                await opening.acquire()
                held = True
            reader, writer, status, retry_after = await connect(port, token, stream)
            if status == 200:
                break
            writer.close()
            stream.refusals += 1
            if stream.refusals > 20:
                raise RuntimeError(f"refused {stream.refusals} times, last with {status}")
            if held:
                opening.release()
                held = False
            await asyncio.sleep(float(retry_after) if retry_after.isdigit() else 1.0)
        buffer = b""
        async for chunk in chunks(reader):
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                lines = block.decode().split("\n")
                if all(line.startswith(":") for line in lines):
                    stream.heartbeats += 1
                    continue
                data = next((line[5:] for line in lines if line.startswith("data:")), None)
                if data is None:  # "retry: 2000"
                    continue
                stream.events += 1
                if stream.opened_at is None:
                    stream.opened_at = time.monotonic()
                    if held:
                        opening.release()
                        held = False
                    if first_only:
                        return
                if json.loads(data)["status"] in TERMINAL:
                    stream.terminal_at = time.time()
        stream.ended = True
    except (OSError, asyncio.IncompleteReadError, ValueError, KeyError, RuntimeError) as exc:
        stream.error = f"{type(exc).__name__}: {exc}"
    finally:
        if held:
            opening.release()
        if writer is not None:
            writer.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def warm_up(args: argparse.Namespace, port: int, token: str, pid: int) -> dict[str, Any]:
    """First streams and plain GETs (not measured), then the server idle without streams."""
    jobs = args.job_ids
    await asyncio.gather(
        *(follow(port, token, Stream(job), None, first_only=True) for job in jobs[:20])
    )
    loop = asyncio.get_running_loop()
    usage = Usage.of(pid)
    gets = jobs[:100]
    for job in gets:
        await loop.run_in_executor(None, http, port, "GET", f"/api/jobs/{job}/", token)
    get_cpu = (Usage.of(pid).cpu - usage.cpu) / len(gets)
    await asyncio.sleep(1.0)
    idle_start = Usage.of(pid)
    await asyncio.sleep(min(10.0, args.quiet))
    return {"get_cpu": get_cpu, "idle_start": idle_start, "before": Usage.of(pid)}


async def measure(args: argparse.Namespace, port: int, token: str, pid: int, cluster_start) -> dict:
    """Open the streams, measure them idle, then (optionally) let the jobs finish."""
    figures = await warm_up(args, port, token, pid)
    jobs = args.job_ids
    streams = [Stream(jobs[n % len(jobs)]) for n in range(args.streams)]
    figures["streams"] = streams
    opening = asyncio.Semaphore(args.open_concurrency) if args.open_concurrency else None
    started = time.monotonic()
    tasks = [asyncio.create_task(follow(port, token, s, opening)) for s in streams]
    try:
        threads = 0
        while (opened := sum(s.opened_at is not None for s in streams)) < len(streams):
            broken = [s.error for s in streams if s.error]
            if broken or time.monotonic() > started + args.open_timeout:
                raise SetupError(f"{opened} of {len(streams)} streams opened; {broken[:3]}")
            threads = max(threads, Usage.of(pid).threads)
            await asyncio.sleep(0.02)
        figures["open_seconds"] = max(s.opened_at for s in streams) - started
        figures["threads_opening"] = threads
        await asyncio.sleep(1.0)  # the last requests' threads end
        figures["opened"] = Usage.of(pid)
        figures["pg_before"] = postgres_activity(args.database_url)
        heartbeats = sum(s.heartbeats for s in streams)
        await asyncio.sleep(args.quiet)
        figures["quiet"] = Usage.of(pid)
        figures["heartbeats"] = sum(s.heartbeats for s in streams) - heartbeats
        figures["dropped"] = sum(s.ended or s.error is not None for s in streams)
        if figures["pg_before"]:
            # PostgreSQL publishes a backend's counters about once a second.
            await asyncio.sleep(1.5)
            figures["pg_after"] = postgres_activity(args.database_url)
            figures["pg_heartbeats"] = sum(s.heartbeats for s in streams) - heartbeats
        if args.complete:
            samples = [Usage.of(pid)]
            cluster_start()
            deadline = time.monotonic() + args.complete_timeout
            while not all(t.done() for t in tasks) and time.monotonic() < deadline:
                await asyncio.wait(tasks, timeout=0.05)
                samples.append(Usage.of(pid))
            figures["threads_ending"] = max(u.threads for u in samples)
            await asyncio.sleep(2.0)  # the threads that closed the responses exit
            figures["after"] = Usage.of(pid)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return figures


def report(args: argparse.Namespace, figures: dict) -> int:
    """Print the figures; return the exit status."""
    n, per_k = args.streams, 1000 / args.streams
    streams = figures["streams"]
    before, opened, quiet = figures["before"], figures["opened"], figures["quiet"]
    idle_start = figures["idle_start"]
    quiet_s = quiet.at - opened.at
    idle_core = (quiet.cpu - opened.cpu) / quiet_s
    alone_core = (before.cpu - idle_start.cpu) / (before.at - idle_start.at)
    open_cpu = opened.cpu - before.cpu
    print(
        f"open:  {n} streams in {figures['open_seconds']:.2f} s "
        f"({sum(s.refusals for s in streams)} refusals (503) retried); "
        f"server CPU {open_cpu:.2f} s, "
        f"{1000 * open_cpu / n:.1f} ms a stream (a plain GET /api/jobs/{{id}}/: "
        f"{1000 * figures['get_cpu']:.1f} ms)"
    )
    pg = figures["pg_before"]
    print(
        f"open:  RSS {before.rss_mb:.1f} -> {opened.rss_mb:.1f} MB = "
        f"{(opened.rss_mb - before.rss_mb) * per_k:.1f} MB per 1,000 open streams; threads "
        f"{before.threads} -> {opened.threads} (at most {figures['threads_opening']} while opening)"
        + (f"; PostgreSQL connections to the database: {pg[0]}" if pg else "")
    )
    print(
        f"quiet: {quiet_s:.1f} s, every stream open: server CPU {quiet.cpu - opened.cpu:.2f} s = "
        f"{100 * idle_core * per_k:.1f}% of a core per 1,000 open streams "
        f"({60 * idle_core * per_k:.1f} CPU-s/min; without streams {100 * alone_core:.1f}%); "
        f"{figures['heartbeats']} heartbeats; RSS {quiet.rss_mb:.1f} MB, threads {quiet.threads}; "
        f"streams ended early: {figures['dropped']}"
    )
    if pg:
        committed = figures["pg_after"][1] - pg[1]
        per_heartbeat = committed / figures["pg_heartbeats"] if figures["pg_heartbeats"] else 0
        print(
            f"quiet: {committed} PostgreSQL transactions committed in the database, the bench's "
            f"readings included ({per_heartbeat:.2f} per heartbeat sent)"
        )
    failed = figures["dropped"] > 0
    if args.complete:
        finished = finished_times(args.job_ids)
        lags = [s.terminal_at - finished[s.job_id] for s in streams if s.terminal_at]
        after = figures["after"]
        if lags:
            last = max(s.terminal_at for s in streams if s.terminal_at) - min(finished.values())
            print(
                f"end:   {len(lags)} of {n} streams got their terminal event after their job "
                f"finished: p50 {percentile(lags, 50):.3f} s, p99 {percentile(lags, 99):.3f} s, "
                f"max {max(lags):.3f} s; first job finished to last terminal event {last:.2f} s"
            )
        print(
            f"end:   server threads at most {figures['threads_ending']} while streams ended; "
            f"2 s later RSS {after.rss_mb:.1f} MB, threads {after.threads}"
        )
        failed = failed or len(lags) < n or not all(s.ended for s in streams)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=100, help="streams are spread over these")
    parser.add_argument(
        "--open-concurrency", type=int, default=50, help="streams being opened at once (0: all)"
    )
    parser.add_argument("--quiet", type=float, default=30.0, help="seconds measured, all open")
    parser.add_argument("--no-complete", dest="complete", action="store_false")
    parser.add_argument("--q-workers", type=int, default=2)
    parser.add_argument("--report-delay", type=float, default=0.0, help="seconds a report takes")
    parser.add_argument("--open-timeout", type=float, default=120.0)
    parser.add_argument("--complete-timeout", type=float, default=120.0)
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL") or f"sqlite:///{SQLITE_PATH}"
    )
    args = parser.parse_args()
    if min(args.streams, args.jobs, args.q_workers) < 1 or args.open_concurrency < 0:
        parser.error("--streams, --jobs and --q-workers must be >= 1, --open-concurrency >= 0")
    if args.quiet <= 0:
        parser.error("--quiet must be positive")
    raise_open_files_limit()

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or "bench-only-secret-key",
        "DATABASE_URL": args.database_url,
        "ALLOWED_HOSTS": "127.0.0.1",
        # One user opens every stream: lift the per-user rates.
        "API_THROTTLE_POLL": "1000000/min",
        "API_THROTTLE_SUBMIT": "1000000/min",
        "Q_WORKERS": str(args.q_workers),
        "PURCHASES_REPORT_DELAY": str(args.report_delay),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)
    env.pop("DJANGO_DEBUG", None)
    for name in ("DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY", "DATABASE_URL"):
        os.environ[name] = env[name]
    os.environ.pop("REDIS_URL", None)

    def terminate(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, terminate)
    children: list[subprocess.Popen] = []
    try:
        described = prepare_database(args.database_url, env)
        token = create_token()
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        port = free_port()
        server = start(
            [
                sys.executable, "-m", "uvicorn", "project.asgi:application",
                "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                "--lifespan", "off", "--no-server-header", "--timeout-graceful-shutdown", "3",
                "--log-level", "warning",
            ],
            env, LOG_DIR / "uvicorn.log",
        )  # fmt: skip
        children.append(server)
        wait_until(
            "uvicorn", lambda: http(port, "GET", "/api/products/", token)[0] == 200,
            timeout=30, child=server,
        )  # fmt: skip
        submit = {"body": b"{}", "Prefer": "respond-async"}
        args.job_ids = [
            http(port, "POST", "/api/reports/sales/", token, **submit)[2]["id"]
            for _ in range(args.jobs)
        ]
        print(
            f"streams: {args.streams} over {args.jobs} pending jobs, one uvicorn worker "
            f"(pid {server.pid}), {described}; {os.cpu_count()} CPUs, load average "
            + " ".join(f"{v:.2f}" for v in os.getloadavg())
        )

        def cluster_start() -> None:
            command = [sys.executable, str(ROOT / "manage.py"), "qcluster"]
            children.append(start(command, env, LOG_DIR / "qcluster.log"))

        figures = asyncio.run(measure(args, port, token, server.pid, cluster_start))
        return report(args, figures)
    except SetupError as exc:
        print(f"streams: {exc}", file=sys.stderr)
        return 2
    finally:
        stop(children)


if __name__ == "__main__":
    sys.exit(main())
