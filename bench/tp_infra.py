"""Infrastructure for ``bench/throughput.py`` and ``bench/poll.py``: private servers, processes, CPU.

No Django imports. Everything started here runs in a session of its own and is
stopped by PID (then its process group), whatever happens to the bench.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jobs.processes import stop_process_group

PG_BIN = Path(os.environ.get("BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = os.environ.get("BENCH_REDIS_SERVER", "/usr/bin/redis-server")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A set-up step failed; the message says which."""


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; BenchError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except BenchError:
            raise
        except Exception as exc:  # a server still starting refuses connections
            value, last = None, exc
        else:
            last = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}" + (f" ({last})" if last else ""))
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- Processes ---------------------------------------------------------------


class Processes:
    """Children started in sessions of their own, stopped by PID then process group."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []

    def start(self, cmd: list[str], *, log: Path | None = None, **kwargs: Any) -> subprocess.Popen:
        out = open(log, "ab") if log else None  # noqa: SIM115 - closed once the child has it
        try:
            kwargs.setdefault("stdout", out or subprocess.DEVNULL)
            kwargs.setdefault("stderr", subprocess.STDOUT if out else subprocess.DEVNULL)
            child = subprocess.Popen(cmd, start_new_session=True, **kwargs)
        finally:
            if out:
                out.close()
        self.children.append(child)
        return child

    def stop(self, child: subprocess.Popen, *, grace: float = 15.0, sig: int = signal.SIGTERM) -> None:
        """Signal the main process, wait up to ``grace`` seconds, then SIGKILL its group."""
        stop_process_group(child, grace=grace, sig=sig)
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self.children)):
            self.stop(child)


# --- CPU from /proc -------------------------------------------------------------


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, CPU seconds of the process and of its reaped children)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw.rsplit(")", 1)[1].split()
        ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        table[int(entry)] = (int(fields[1]), ticks / CLOCK_TICKS)
    return table


def tree_cpu(*roots: int) -> float:
    """CPU seconds used so far by the trees under ``roots`` (exited, reaped members included)."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0.0, [pid for pid in roots if pid in table], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += table[pid][1]
        todo.extend(children.get(pid, []))
    return total


# --- Private PostgreSQL and Redis ----------------------------------------------


def _as_postgres() -> dict[str, Any]:
    """PostgreSQL refuses to run as root: run its programs as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam("postgres")
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


class PrivatePostgres:
    """initdb in a temporary directory, started on a free port with pg_stat_statements."""

    def __init__(self, procs: Processes, log_dir: Path) -> None:
        self.procs, self.log_dir = procs, log_dir
        self.dir = Path(tempfile.mkdtemp(prefix="bench_pg_"))
        self.port = free_port()
        self.child: subprocess.Popen | None = None
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        owner = _as_postgres()
        if owner:
            os.chown(self.dir, owner["user"], owner["group"])
        data = self.dir / "data"
        subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, timeout=120, **owner,
        )  # fmt: skip
        settings = {
            "port": self.port, "listen_addresses": "127.0.0.1", "unix_socket_directories": str(self.dir),
            "shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.max": 10000,
            "max_connections": 200,
        }  # fmt: skip
        cmd = [str(PG_BIN / "postgres"), "-D", str(data)]
        for key, value in settings.items():
            cmd += ["-c", f"{key}={value}"]
        self.child = self.procs.start(cmd, log=self.log_dir / "postgres.log", **owner)
        wait_for(self._ready, timeout=60, what="the private PostgreSQL")

    def _ready(self) -> bool:
        import psycopg

        if self.child is not None and self.child.poll() is not None:
            raise BenchError(f"PostgreSQL exited; see {self.log_dir / 'postgres.log'}")
        with psycopg.connect(self.url, connect_timeout=2, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return True

    def stop(self) -> None:
        if self.child is not None:
            self.procs.stop(self.child, sig=signal.SIGINT)  # fast shutdown
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """redis-server on a free port, without persistence (``--save ''``, no AOF)."""

    def __init__(self, procs: Processes, log_dir: Path) -> None:
        self.procs, self.log_dir = procs, log_dir
        self.dir = Path(tempfile.mkdtemp(prefix="bench_redis_"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.child: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(self.dir)]  # fmt: skip
        self.child = self.procs.start(cmd, log=self.log_dir / "redis.log")
        wait_for(lambda: redis_client(self.url).ping(), timeout=30, what="the private Redis")

    def stop(self) -> None:
        if self.child is not None:
            self.procs.stop(self.child)
        shutil.rmtree(self.dir, ignore_errors=True)


def redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2)


def redis_pid(url: str) -> int | None:
    """The PID of a Redis server on this machine (for its CPU), or None."""
    try:
        return int(redis_client(url).info("server")["process_id"])
    except Exception:
        return None


# --- PostgreSQL URLs and databases --------------------------------------------------


def with_database(url: str, name: str, user: str | None = None) -> str:
    """``url`` pointing at database ``name`` (and as ``user``, when given)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if user is not None:
        netloc = user + "@" + netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=netloc, path="/" + name))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def recreate_database(admin_url: str, name: str) -> None:
    """Drop and create ``name``, which must contain "bench"."""
    import psycopg

    if "bench" not in name:
        raise BenchError(f"refusing to drop or create {name!r}: the name must contain 'bench'")
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def postmaster_pid(admin_url: str) -> int | None:
    """The server's main PID, when it runs on this machine (the parent of our backend)."""
    import psycopg

    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1])
    except Exception:
        return None
