"""Load: 200 concurrent pollers on running jobs while purchases are submitted, over gunicorn and PostgreSQL.

Usage (from the repository root)::

    DJANGO_SECRET_KEY=bench .venv/bin/python bench/load_poll.py
    DJANGO_SECRET_KEY=bench .venv/bin/python bench/load_poll.py --web-workers 2 --threads 16
    DJANGO_SECRET_KEY=bench .venv/bin/python bench/load_poll.py --conn-max-age 0   # a connection per request

What it does, every run from scratch:

1. drops and creates the PostgreSQL database ``jobs_load_bench`` (a name without
   "bench", or a server other than 127.0.0.1/localhost, is refused) and migrates it
   with ``manage.py migrate`` in a subprocess;
2. creates ``--users`` users with tokens and a few products with a stock of 10^9;
3. starts ``gunicorn project.wsgi:application`` (gthread workers) and
   ``manage.py qcluster`` as subprocesses, each in its own session, and waits for
   both with a bounded poll;
4. submits one purchase per poller (warm-up, not measured), then for ``--duration``
   seconds: a submitter posts purchases at ``--rate`` per second (with an
   Idempotency-Key) while ``--pollers`` threads, each with its own keep-alive
   connection, poll a running job, sending ``If-None-Match`` with the last ETag and
   waiting ``Retry-After`` between polls; a poller whose job finishes switches to
   its user's newest unfinished job;
5. prints requests/s, p50/p90/p99/max latency of polls and of submissions, the
   status counts and the errors (non-2xx/304 answers, connection errors,
   timeouts), and where the CPU went;
6. stops gunicorn and the cluster by PID (SIGTERM to the main process, a bounded
   wait, then SIGKILL to the process group), also on failure and Ctrl-C.

The payment takes ``--payment-delay`` seconds (20 by default) and the cluster has
``--q-workers`` workers (2), so the jobs stay pending or processing while polled.
gunicorn runs 3 workers x 8 threads by default; ``--conn-max-age`` sets
``DB_CONN_MAX_AGE`` for every process (default: the settings' own, persistent
connections). Exit status: 0 when the target is met (no errors, p99 under
``--target-p99`` ms for polls and submissions alike), 1 when missed, 2 when the
set-up failed. A PostgreSQL restart during the window (fault tests running beside
it do that) is detected and reported: such figures are not valid. Standard library
only on the client side; all traffic goes to 127.0.0.1. Logs of the server
processes are kept in ``var/load_poll/``.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.processes import stop_process_groups  # noqa: E402 - needs ROOT on the path
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/jobs_load_bench"
LOG_DIR = ROOT / "var" / "load_poll"
USER_PREFIX = "load-user-"
TERMINAL = {"completed", "failed", "cancelled"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class SetupError(Exception):
    """The bench could not start (database, server or cluster)."""


# --- Database ------------------------------------------------------------------


def check_database_url(url: str) -> str:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if parts.scheme not in {"postgres", "postgresql"}:
        raise SetupError(f"{url!r}: this bench runs on PostgreSQL only.")
    if parts.hostname not in {"127.0.0.1", "localhost"}:
        raise SetupError(f"{url!r}: only a PostgreSQL server on 127.0.0.1 is allowed.")
    if "bench" not in name:
        raise SetupError(
            f"Refusing to use {name!r}: the database name must contain 'bench'."
        )
    return name


def recreate_database(url: str, name: str) -> None:
    """Drop and create the bench database (its name was checked by ``check_database_url``)."""
    import psycopg

    admin_url = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def migrate(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--no-input", "--verbosity", "0"],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if result.returncode != 0:
        raise SetupError(
            f"manage.py migrate failed ({result.returncode}):\n{result.stderr[-3000:]}"
        )


def create_fixtures(users: int, products: int) -> tuple[list[str], list[int]]:
    """Users with tokens (no usable password: they only use tokens) and products with a huge stock."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from purchases.models import Product

    User = get_user_model()
    password = make_password(None)
    made = User.objects.bulk_create(
        [
            User(username=f"{USER_PREFIX}{n:03d}", password=password)
            for n in range(users)
        ]
    )
    tokens = Token.objects.bulk_create(
        [Token(key=Token.generate_key(), user=user) for user in made]
    )
    items = Product.objects.bulk_create(
        [
            Product(
                sku=f"LOAD-{n:02d}", name=f"Load item {n}", price="1.00", stock=10**9
            )
            for n in range(products)
        ]
    )
    product_ids = [item.pk for item in items]
    connection.close()
    return [token.key for token in tokens], product_ids


def postgres_started(url: str) -> object:
    """When the PostgreSQL server started: a change means it restarted (fault tests do that)."""
    import psycopg

    with psycopg.connect(url, connect_timeout=10) as conn:
        return conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]


def job_counts() -> dict[str, int]:
    from django.db import connection
    from django.db.models import Count

    from jobs.models import Job

    counts = dict(Job.objects.order_by().values_list("status").annotate(n=Count("pk")))
    connection.close()
    return counts


# --- Server processes ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def stop(children: list[subprocess.Popen], grace: float) -> None:
    """SIGTERM to each main process, a bounded wait, then SIGKILL to each process group."""
    for child in stop_process_groups(children, grace=grace):
        print(f"  pid {child.pid} still running after {grace:.0f} s: killed its process group")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- CPU accounting (/proc) ---------------------------------------------------


def process_cpu(web_sid: int, cluster_sid: int) -> dict[str, float]:
    """CPU seconds so far of gunicorn, qcluster (each its session) and PostgreSQL (every
    ``postgres`` process), children they reaped included: a PostgreSQL backend that
    served one request and exited is counted in its postmaster's children time."""
    totals = {"gunicorn": 0, "qcluster": 0, "postgres": 0}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                raw = stat.read()
        except OSError:
            continue
        comm = raw[raw.find("(") + 1 : raw.rfind(")")]
        rest = raw[raw.rfind(")") + 2 :].split()
        ticks = sum(int(value) for value in rest[11:15])  # utime stime cutime cstime
        sid = int(rest[3])
        if sid == web_sid:
            totals["gunicorn"] += ticks
        elif sid == cluster_sid:
            totals["qcluster"] += ticks
        elif comm == "postgres":
            totals["postgres"] += ticks
    return {name: ticks / CLOCK_TICKS for name, ticks in totals.items()}


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:9]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLOCK_TICKS, sum(values) / CLOCK_TICKS


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


# --- HTTP client ---------------------------------------------------------------


@dataclass
class Samples:
    """Latencies (ms) and outcomes of one kind of request, inside the window."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)

    def add(self, latency_ms: float, outcome: int | str) -> None:
        # list.append and Counter updates of distinct keys run under the GIL;
        # the lock keeps the Counters exact.
        with LOCK:
            self.latencies.append(latency_ms)
            if isinstance(outcome, int):
                self.statuses[outcome] += 1
            else:
                self.errors[outcome] += 1


LOCK = threading.Lock()


class Client:
    """One keep-alive HTTP/1.1 connection to the server, as a browser tab would hold."""

    reconnects = 0  # stale keep-alive connections closed by the server and retried once

    def __init__(self, port: int, token: str, timeout: float) -> None:
        self.port, self.timeout = port, timeout
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
        }
        self.conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        all_headers = {**self.headers, **(headers or {})}
        for attempt in (1, 2):
            fresh = self.conn is None
            if fresh:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=self.timeout
                )
            try:
                self.conn.request(method, path, body=body, headers=all_headers)
                response = self.conn.getresponse()
                data = response.read()
            except (
                http.client.RemoteDisconnected,
                BrokenPipeError,
                ConnectionResetError,
            ):
                self.close()
                # A reused connection the server closed while idle: send again on a
                # new one, as HTTP clients do (a POST only because it carries an
                # Idempotency-Key). A fresh connection failing is an error.
                if fresh or attempt == 2:
                    raise
                with LOCK:
                    Client.reconnects += 1
                continue
            except BaseException:
                self.close()
                raise
            if response.will_close:
                self.close()
            return response.status, response.headers, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def error_name(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    return type(exc).__name__


class JobBoard:
    """The jobs each user has submitted, newest last, and which are known to have finished."""

    def __init__(self, users: int) -> None:
        self.lock = threading.Lock()
        self.jobs: list[list[str]] = [[] for _ in range(users)]
        self.finished: set[str] = set()
        self.switches = 0

    def add(self, user: int, path: str) -> None:
        with self.lock:
            self.jobs[user].append(path)

    def finish(self, path: str) -> None:
        with self.lock:
            self.finished.add(path)

    def newest_running(self, user: int) -> str | None:
        with self.lock:
            return next(
                (p for p in reversed(self.jobs[user]) if p not in self.finished), None
            )


@dataclass
class Run:
    port: int
    tokens: list[str]
    product_ids: list[int]
    timeout: float
    board: JobBoard
    stop: threading.Event = field(default_factory=threading.Event)
    polls: Samples = field(default_factory=Samples)
    submits: Samples = field(default_factory=Samples)
    seen_status: Counter = field(default_factory=Counter)
    window_start: float = 0.0
    window_end: float = 0.0
    idle_waits: int = 0

    def purchase(self, client: Client, user: int) -> tuple[int, str | None]:
        """POST one purchase; return the status and the job's Location."""
        body = json.dumps(
            {"goods": [{"product_id": random.choice(self.product_ids), "quantity": 1}]}
        ).encode()
        status, headers, _ = client.request(
            "POST", "/api/purchases/", body=body,
            headers={
                "Authorization": f"Bearer {self.tokens[user]}",
                "Content-Type": "application/json",
                "Idempotency-Key": str(uuid.uuid4()),
            },
        )  # fmt: skip
        location = headers.get("Location") if status == 202 else None
        if location:
            self.board.add(user, location)
        return status, location


def poller(run: Run, number: int, job: str | None) -> None:
    user = number % len(run.tokens)
    client = Client(run.port, run.tokens[user], run.timeout)
    etag: str | None = None
    # Spread the pollers' phases over the first second, as independent clients are.
    next_at = run.window_start + random.random()
    try:
        while not run.stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0 and run.stop.wait(delay):
                break
            if time.monotonic() >= run.window_end:
                break
            if job is None:
                job, etag = run.board.newest_running(user), None
                if job is None:
                    with LOCK:
                        run.idle_waits += 1
                    next_at = time.monotonic() + 0.2
                    continue
            headers = {"If-None-Match": etag} if etag else {}
            started = time.monotonic()
            try:
                status, response_headers, data = client.request(
                    "GET", job, headers=headers
                )
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                run.polls.add((time.monotonic() - started) * 1000, error_name(exc))
                next_at = time.monotonic() + 1.0
                continue
            elapsed_ms = (time.monotonic() - started) * 1000
            document = None
            if status == 200:
                try:
                    document = json.loads(data)
                    document["status"]  # the job document's shape is checked
                except (ValueError, TypeError, KeyError):
                    run.polls.add(elapsed_ms, "200 without a job document")
                    next_at = time.monotonic() + 1.0
                    continue
            run.polls.add(elapsed_ms, status)
            retry_after = 1.0
            if document is not None:
                with LOCK:
                    run.seen_status[document["status"]] += 1
                etag = response_headers.get("ETag")
                if document["status"] in TERMINAL:
                    run.board.finish(job)
                    newer = run.board.newest_running(user)
                    with LOCK:
                        run.board.switches += 1
                    job, etag = newer, None
            try:
                retry_after = max(
                    float(response_headers.get("Retry-After") or 1.0), 0.0
                )
            except ValueError:
                pass
            next_at = time.monotonic() + retry_after
    finally:
        client.close()


def submitter(run: Run, rate: float, lane: int, lanes: int) -> None:
    """Submit purchase number ``lane``, ``lane + lanes``, ... at ``window_start + n / rate``.

    Several lanes keep the rate steady (open loop) when a submission takes longer
    than ``1 / rate``. Each lane is one keep-alive connection (a front end's
    server-side caller, say) carrying purchases of every user in turn.
    """
    client = Client(run.port, run.tokens[0], run.timeout)
    try:
        for n in itertools.count(lane, lanes):
            due = run.window_start + n / rate
            delay = due - time.monotonic()
            if delay > 0 and run.stop.wait(delay):
                break
            if time.monotonic() >= run.window_end:
                break
            user = n % len(run.tokens)
            started = time.monotonic()
            try:
                status, _ = run.purchase(client, user)
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                run.submits.add((time.monotonic() - started) * 1000, error_name(exc))
                continue
            run.submits.add((time.monotonic() - started) * 1000, status)
    finally:
        client.close()


# --- Set-up and report ---------------------------------------------------------


def wait_until(
    what: str,
    check,
    *,
    timeout: float,
    children: list[subprocess.Popen],
    logs: list[Path],
):
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        for child, log in zip(children, logs, strict=True):
            if child.poll() is not None:
                raise SetupError(
                    f"pid {child.pid} exited ({child.returncode}) while waiting for {what}:\n{tail(log)}"
                )
        try:
            value = check()
            if value:
                return value
        except (OSError, http.client.HTTPException) as exc:
            last_error = exc
        time.sleep(0.2)
    raise SetupError(
        f"{what}: not ready after {timeout:.0f} s (last error: {last_error!r})"
    )


def percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def describe(label: str, samples: Samples, window: float) -> str:
    ordered = sorted(samples.latencies)
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(samples.statuses.items()))
    errors = sum(samples.errors.values())
    return (
        f"{label:<12} {len(ordered):>6} requests {len(ordered) / window:7.1f}/s   "
        f"p50 {percentile(ordered, 50):6.1f}  p90 {percentile(ordered, 90):6.1f}  "
        f"p99 {percentile(ordered, 99):6.1f}  max {max(ordered, default=math.nan):6.1f} ms"
        + (
            f"   [{statuses}{'; errors ' + str(errors) if errors else ''}]"
            if statuses or errors
            else ""
        )
    )


def count_errors(samples: Samples, expected: set[int]) -> Counter:
    errors = Counter(samples.errors)
    for code, n in samples.statuses.items():
        if code not in expected:
            errors[f"HTTP {code}"] += n
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pollers", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured")
    parser.add_argument(
        "--rate", type=float, default=3.0, help="purchases submitted per second"
    )
    parser.add_argument(
        "--users", type=int, default=20, help="pollers are spread over this many users"
    )
    parser.add_argument("--products", type=int, default=10)
    parser.add_argument(
        "--web-workers",
        type=int,
        default=3,
        help="gunicorn worker processes",
    )
    parser.add_argument(
        "--threads", type=int, default=8, help="threads per gunicorn worker (gthread)"
    )
    parser.add_argument(
        "--keep-alive", type=int, default=5, help="gunicorn --keep-alive, seconds"
    )
    parser.add_argument("--q-workers", type=int, default=2)
    parser.add_argument(
        "--payment-delay",
        type=float,
        default=20.0,
        help="seconds the simulated payment takes",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="client timeout per request, seconds",
    )
    parser.add_argument("--target-p99", type=float, default=250.0, help="ms")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--conn-max-age",
        help="DB_CONN_MAX_AGE for every process (seconds; 0 = a new connection per request); "
        "default: the settings' default",
    )
    args = parser.parse_args()
    if (
        min(
            args.pollers,
            args.users,
            args.products,
            args.web_workers,
            args.threads,
            args.q_workers,
        )
        < 1
    ):
        parser.error(
            "--pollers, --users, --products, --web-workers, --threads and --q-workers must be >= 1"
        )
    if args.duration <= 0 or args.rate <= 0:
        parser.error("--duration and --rate must be positive")

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY")
        or "bench-only-secret-key",
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": args.database_url,
        "ALLOWED_HOSTS": "127.0.0.1",
        "Q_WORKERS": str(args.q_workers),
        "PURCHASES_PAYMENT_DELAY": str(args.payment_delay),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)  # the ORM broker, on the bench database
    if args.conn_max_age is not None:
        env["DB_CONN_MAX_AGE"] = os.environ["DB_CONN_MAX_AGE"] = args.conn_max_age
    os.environ.update(
        {
            k: env[k]
            for k in (
                "DJANGO_SETTINGS_MODULE",
                "DJANGO_SECRET_KEY",
                "DATABASE_URL",
                "ALLOWED_HOSTS",
            )
        }
    )
    os.environ.pop("REDIS_URL", None)
    os.environ.pop("DJANGO_DEBUG", None)

    children: list[subprocess.Popen] = []
    stop_event = threading.Event()

    def terminate(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    # SIGINT too: a shell starting this in the background would have it ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, terminate)
    try:
        name = check_database_url(args.database_url)
        print(
            f"load_poll: {args.pollers} pollers over {args.users} users, {args.rate:g} purchases/s, "
            f"{args.duration:g} s; gunicorn {args.web_workers} workers x {args.threads} threads "
            f"(gthread, keep-alive {args.keep_alive} s); qcluster {args.q_workers} workers, "
            f"payment {args.payment_delay:g} s"
        )
        # Other work on the machine skews the figures: say how busy it was.
        before = machine_cpu()
        time.sleep(2)
        after = machine_cpu()
        print(
            f"  {os.cpu_count()} CPUs, {100 * (after[0] - before[0]) / (after[1] - before[1]):.0f}% busy "
            "before the start, load average "
            + " ".join(f"{v:.2f}" for v in os.getloadavg())
        )
        t0 = time.monotonic()
        recreate_database(args.database_url, name)
        migrate(env)
        tokens, product_ids = create_fixtures(args.users, args.products)
        from django.conf import settings

        print(
            f"  database {name} created and migrated, {args.users} users, {args.products} products "
            f"({time.monotonic() - t0:.1f} s); CONN_MAX_AGE "
            f"{settings.DATABASES['default'].get('CONN_MAX_AGE')}"
        )

        LOG_DIR.mkdir(parents=True, exist_ok=True)
        port = free_port()
        logs = [LOG_DIR / "gunicorn.log", LOG_DIR / "qcluster.log"]
        web_command = [
            sys.executable, "-m", "gunicorn", "project.wsgi:application",
            "--bind", f"127.0.0.1:{port}",
            "--worker-class", "gthread",
            "--workers", str(args.web_workers),
            "--threads", str(args.threads),
            "--keep-alive", str(args.keep_alive),
            "--graceful-timeout", "5",
            "--log-level", "warning",
        ]  # fmt: skip
        children.append(start(web_command, env, logs[0]))
        children.append(
            start([sys.executable, str(ROOT / "manage.py"), "qcluster"], env, logs[1])
        )
        web, cluster = children

        probe = Client(port, tokens[0], args.timeout)
        wait_until(
            "gunicorn", lambda: probe.request("GET", "/api/products/")[0] == 200,
            timeout=30, children=children, logs=logs,
        )  # fmt: skip
        board = JobBoard(args.users)
        run = Run(
            port=port,
            tokens=tokens,
            product_ids=product_ids,
            timeout=args.timeout,
            board=board,
            stop=stop_event,
        )

        # Warm-up: one job per poller, so every poller starts on a running job.
        seeds: list[str] = []
        for number in range(args.pollers):
            user = number % args.users
            status, location = run.purchase(probe, user)
            if status != 202 or not location:
                raise SetupError(f"warm-up purchase answered {status}")
            seeds.append(location)

        def cluster_running() -> bool:
            status, _, data = probe.request("GET", seeds[0])
            return status == 200 and json.loads(data)["status"] != "pending"

        wait_until(
            "the django-q2 cluster",
            cluster_running,
            timeout=60,
            children=children,
            logs=logs,
        )
        probe.close()
        print(
            f"  gunicorn on 127.0.0.1:{port} (pid {web.pid}), qcluster pid {cluster.pid}; "
            f"{len(seeds)} warm-up jobs submitted, the cluster is running them "
            f"({time.monotonic() - t0:.1f} s)"
        )

        # The window.
        pg_started = postgres_started(args.database_url)
        cpu_before = (process_cpu(web.pid, cluster.pid), own_cpu(), machine_cpu())
        run.window_start = time.monotonic() + 0.5
        run.window_end = run.window_start + args.duration
        threads = [
            threading.Thread(
                target=poller, args=(run, n, seeds[n]), name=f"poller-{n}", daemon=True
            )
            for n in range(args.pollers)
        ]
        # A lane sends every lanes / rate seconds (2 s): within the keep-alive.
        lanes = max(1, math.ceil(args.rate * 2))
        threads += [
            threading.Thread(
                target=submitter,
                args=(run, args.rate, lane, lanes),
                name=f"submitter-{lane}",
                daemon=True,
            )
            for lane in range(lanes)
        ]
        for thread in threads:
            thread.start()
        while time.monotonic() < run.window_end:
            time.sleep(0.2)
            for child, log in zip(children, logs, strict=True):
                if child.poll() is not None:
                    raise SetupError(
                        f"pid {child.pid} exited ({child.returncode}) during the run:\n{tail(log)}"
                    )
        for thread in threads:
            thread.join(timeout=args.timeout + 5)
        elapsed = time.monotonic() - run.window_start
        run.stop.set()
        cpu_after = (process_cpu(web.pid, cluster.pid), own_cpu(), machine_cpu())
        hung = sum(thread.is_alive() for thread in threads)
        try:
            pg_restarted = postgres_started(args.database_url) != pg_started
        except Exception:  # noqa: BLE001 - down now: it went away during the window
            pg_restarted = True
        try:
            counts = job_counts()
        except Exception as exc:  # noqa: BLE001 - a report without it is still a report
            counts = {f"unknown ({type(exc).__name__})": 0}

        # The report.
        window = args.duration
        poll_errors = count_errors(run.polls, {200, 304})
        submit_errors = count_errors(run.submits, {202})
        errors = poll_errors + submit_errors
        total = len(run.polls.latencies) + len(run.submits.latencies)
        every = Samples(latencies=run.polls.latencies + run.submits.latencies)
        print(
            f"\nwindow {window:g} s (threads joined after {elapsed:.1f} s): {total} requests, "
            f"{total / window:.1f} requests/s"
        )
        print(describe("polls", run.polls, window))
        print(describe("submissions", run.submits, window))
        print(describe("all", every, window))
        print(
            f"errors: {sum(errors.values())}"
            + (
                f" ({', '.join(f'{k}: {v}' for k, v in errors.items())})"
                if errors
                else ""
            )
        )
        print(
            f"keep-alive connections closed by the server and retried: {Client.reconnects}; "
            f"pollers still busy at the end: {hung}; times a poller had no running job: {run.idle_waits}"
        )
        print(
            "job status in 200 answers: "
            + ", ".join(f"{k} {v}" for k, v in sorted(run.seen_status.items()))
            + f"; pollers switched job {board.switches} times"
        )
        print(
            "jobs in the database at the end: "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        )
        busy = cpu_after[2][0] - cpu_before[2][0]
        capacity = cpu_after[2][1] - cpu_before[2][1]
        used = {name: cpu_after[0][name] - cpu_before[0][name] for name in cpu_after[0]}
        used["this client"] = cpu_after[1] - cpu_before[1]
        used["the rest (other processes, kernel)"] = busy - sum(used.values())
        print(
            f"CPU over the window, in cores: machine {busy / elapsed:.2f} of {capacity / elapsed:.2f} busy ("
            + ", ".join(
                f"{name} {seconds / elapsed:.2f}" for name, seconds in used.items()
            )
            + "); load average "
            + " ".join(f"{v:.2f}" for v in os.getloadavg())
        )
        if pg_restarted:
            print(
                "WARNING: the PostgreSQL server restarted during the window (not this script: "
                "something else on the machine); these figures are not valid, run again"
            )
        worst = max(
            percentile(sorted(run.polls.latencies), 99),
            percentile(sorted(run.submits.latencies), 99),
        )
        met = not errors and worst < args.target_p99 and not hung
        print(
            f"target (no errors, p99 < {args.target_p99:g} ms for polls and submissions): "
            + ("MET" if met else "MISSED")
            + f" (worst p99 {worst:.1f} ms, errors {sum(errors.values())})"
        )
        return 0 if met else 1
    except SetupError as exc:
        print(f"load_poll: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("load_poll: interrupted", file=sys.stderr)
        return 130
    finally:
        stop_event.set()
        # Let the clean-up finish: a second Ctrl-C must not leave servers behind.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        if children:
            print("stopping gunicorn and qcluster...")
            started = time.monotonic()
            stop(children, grace=15)
            print(
                f"  stopped in {time.monotonic() - started:.1f} s; logs in {LOG_DIR.relative_to(ROOT)}/"
            )


if __name__ == "__main__":
    sys.exit(main())
