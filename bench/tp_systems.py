"""The systems ``bench/throughput.py`` compares: how to prepare, run, feed and watch each one.

Every system runs the same no-op task, whose first line reports its start by UDP
(``bench/tp_probe.py``). A system is prepared (migrate or schema) as the admin
role, its workers connect as ``bench_worker`` and its submitter as ``bench_submit``
(when the server lets the bench create those roles), so that PostgreSQL's
statement counts split by side.
"""

from __future__ import annotations

import importlib.util
import re
import sqlite3
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
MANAGE = [PY, str(ROOT / "manage.py")]
MIGRATE = [*MANAGE, "migrate", "--no-input", "--verbosity", "0"]
QCLUSTER = [*MANAGE, "qcluster"]
MONITOR_MARK = "/* bench-monitor */ "
Q2_CHECK_LAST = 200  # django-q2 keeps its last 250 successes (save_limit): see done()


@dataclass
class Target:
    """Where one run of one system happens."""

    pg_url: Any  # callable(user or None) -> URL of the run's database
    redis_url: str | None
    sqlite_path: Path | None
    udp: str


@dataclass
class System:
    name: str
    kind: str  # tp_submit kind
    broker: str = ""  # JOBS_BROKER for the project's systems
    requires: tuple[str, ...] = ()
    uses_redis: bool = False
    sqlite: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def uses_pg(self) -> bool:
        return not self.sqlite

    def unavailable(self) -> str | None:
        """Why this system cannot run here, or None."""
        missing = [name for name in self.requires if importlib.util.find_spec(name) is None]
        if missing:
            return (f"skipped: {', '.join(missing)} not installed "
                    "(pip install -r bench/requirements.txt, or --install-peers)")  # fmt: skip
        if self.broker == "database" and not _mentions("JOBS_BROKER"):
            return "failed: JOBS_BROKER is not read by project/ or jobs/ yet (no database broker)"
        return None

    def env(self, target: Target, role: str | None) -> dict[str, str]:
        """Environment variables for a process of this system connecting as ``role``."""
        url = f"sqlite:///{target.sqlite_path}" if self.sqlite else target.pg_url(role)
        env = {"BENCH_UDP": target.udp, "PYTHONPATH": str(ROOT)}
        if self.kind == "project":
            env.update(DJANGO_SETTINGS_MODULE="project.settings", DJANGO_SECRET_KEY="bench",
                       Q_WORKERS="2", JOBS_HANDLER_MODULES="bench.handlers",
                       JOBS_BROKER=self.broker, DATABASE_URL=url)  # fmt: skip
        elif self.kind == "q2":
            env.update(DJANGO_SETTINGS_MODULE="bench.q2_settings", DATABASE_URL=url)
        elif self.kind == "celery":
            env.update(DJANGO_SETTINGS_MODULE="bench.celery_settings", DATABASE_URL=url)
        elif self.kind == "procrastinate":
            env.update(PROCRASTINATE_DSN=url)
        elif self.kind == "floor":
            env.update(FLOOR_DSN=url)
        if self.uses_redis:
            env["REDIS_URL"] = target.redis_url or ""
        return env

    def prepare_cmd(self) -> list[str]:
        return {
            "project": MIGRATE, "q2": MIGRATE,
            "celery": [PY, "-m", "django", "migrate", "--no-input", "--verbosity", "0"],
            "procrastinate": [PY, "-m", "procrastinate", "--app", "bench.peer_procrastinate.app", "schema", "--apply"],
            "floor": [PY, "-m", "bench.floor", "schema"],
        }[self.kind]  # fmt: skip

    def worker_cmd(self) -> list[str]:
        return {
            "project": QCLUSTER, "q2": QCLUSTER,
            "celery": [PY, "-m", "celery", "-A", "bench.peer_celery", "worker", "-c", "2",
                       "-P", "prefork", "--loglevel", "WARNING"],
            "procrastinate": [PY, "-m", "procrastinate", "--app", "bench.peer_procrastinate.app", "worker",
                              "--concurrency", "2"],
            "floor": [PY, "-m", "bench.floor", "worker", "--processes", "2"],
        }[self.kind]  # fmt: skip

    def done(self, monitor: Monitor, total: int, started: list[str]) -> tuple[bool, float | None]:
        """Whether ``total`` jobs are recorded finished, and the last finish (epoch seconds).

        ``started`` lists the labels seen starting, in start order.
        """
        if self.kind == "q2":
            # Only the last 250 successes are kept: all are done when the last
            # ones to start are saved (each worker runs one task at a time).
            rows = monitor.query("SELECT name, extract(epoch FROM stopped) FROM django_q_task WHERE success")
            names = {name for name, _ in rows}
            last = max((float(t) for _, t in rows), default=None)
            tail = started[-Q2_CHECK_LAST:]
            return (len(started) >= total and all(label in names for label in tail)), last
        count, last = monitor.query(DONE_SQL[self.kind])[0]
        if self.sqlite and last is not None:
            last = datetime.fromisoformat(last).replace(tzinfo=timezone.utc).timestamp()
        return count >= total, (float(last) if last is not None else None)


DONE_SQL = {
    "project": "SELECT count(*), EPOCH[max(finished_at)] FROM jobs_job "
               "WHERE kind = 'bench.noop' AND status = 'completed'",
    "celery": "SELECT count(*), EPOCH[max(date_done)] FROM django_celery_results_taskresult "
              "WHERE status = 'SUCCESS'",
    "procrastinate": "SELECT (SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'), "
                     "(SELECT EPOCH[max(at)] FROM procrastinate_events WHERE type = 'succeeded')",
    "floor": "SELECT count(*), EPOCH[max(finished_at)] FROM floor_job WHERE status = 'done'",
}  # fmt: skip


class Monitor:
    """The bench's own connection to a run's database; counts its transactions."""

    def __init__(self, system: System, target: Target, role: str | None) -> None:
        self.sqlite = system.sqlite
        self.transactions = 0
        if self.sqlite:
            self.conn: Any = sqlite3.connect(f"file:{target.sqlite_path}?mode=ro", uri=True, timeout=30)
        else:
            import psycopg

            # Never prepared: a Parse outside a transaction would be one more commit.
            self.conn = psycopg.connect(target.pg_url(role), autocommit=True, connect_timeout=10,
                                        prepare_threshold=None)  # fmt: skip
            self.transactions += 1  # the backend's start-up transaction

    def query(self, sql: str) -> list[tuple]:
        sql = re.sub(r"EPOCH\[(.*?)\]", r"\1" if self.sqlite else r"extract(epoch FROM \1)", sql)
        if self.sqlite:
            return self.conn.execute(sql).fetchall()
        self.transactions += 1
        return self.conn.execute(MONITOR_MARK + sql).fetchall()  # type: ignore[arg-type]

    def close(self) -> None:
        self.conn.close()


def _mentions(word: str) -> bool:
    files = [ROOT / "project" / "settings.py", *sorted((ROOT / "jobs").rglob("*.py"))]
    return any(word in path.read_text(errors="replace") for path in files)


SYSTEMS = [
    System("project-db", "project", broker="database"),
    System("project-orm", "project", broker="orm"),
    System("project-redis", "project", broker="redis", uses_redis=True),
    System("project-sqlite", "project", broker="orm", sqlite=True),
    System("q2-orm", "q2"),
    System("q2-redis", "q2", uses_redis=True),
    System("procrastinate", "procrastinate", requires=("procrastinate",)),
    System("celery", "celery", requires=("celery", "django_celery_results"), uses_redis=True),
    System("floor", "floor"),
]
