"""The phases of one run of ``bench/throughput.py`` after the warm-up: idle window, burst, paced.

``idle_cpu`` measures what the running, warmed-up cluster costs doing nothing;
``wait_done`` waits until a phase's jobs are recorded finished; ``pickups``
turns submit times and UDP start reports into pickup delays.
"""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.tp_infra import BenchError, tree_cpu
from bench.tp_systems import Monitor, System

IDLE_SETTLE = 1.0  # seconds left after the warm-ups before the idle window opens


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)  # nearest rank
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def pickups(before: list[float], labels: list[str], starts: dict[str, float]) -> list[float]:
    """Seconds from just before each submit call to its handler's first line (lost reports left out)."""
    return [starts[label] - t for label, t in zip(labels, before) if label in starts]


def cpu_now(bench: Any, workers_pid: int) -> dict[str, float | None]:
    return {
        "workers": tree_cpu(workers_pid),
        "postgresql": tree_cpu(bench.pg_pid) if bench.pg_pid else None,
        "redis": tree_cpu(bench.redis_pid) if bench.redis_pid else None,
    }


def idle_cpu(bench: Any, workers: subprocess.Popen, seconds: float, with_pg: bool) -> dict[str, float | None]:
    """CPU of the idle worker cluster (and PostgreSQL's, if ``with_pg``) over ``seconds``, in % of one core."""
    if seconds <= 0:
        return {"cluster": None, "postgresql": None, "seconds": 0.0}
    pg = bench.pg_pid if with_pg else None
    time.sleep(IDLE_SETTLE)
    t0, w0, p0 = time.monotonic(), tree_cpu(workers.pid), tree_cpu(pg) if pg else None
    time.sleep(seconds)
    t1, w1, p1 = time.monotonic(), tree_cpu(workers.pid), tree_cpu(pg) if pg else None
    if workers.poll() is not None:
        raise BenchError(f"the workers exited ({workers.returncode}) during the idle window")
    elapsed = t1 - t0
    return {
        "cluster": (w1 - w0) / elapsed * 100,
        "postgresql": (p1 - p0) / elapsed * 100 if pg and p0 is not None and p1 is not None else None,
        "seconds": elapsed,
    }


def wait_done(bench: Any, system: System, monitor: Monitor, run: str, labels: list[str], total: int,
              earlier: list[str], children: list[tuple[subprocess.Popen, str]], log: Path,
              deadline: float | None = None) -> tuple[float, list[str]]:  # fmt: skip
    """Poll until ``labels`` have started and ``total`` jobs (all phases) are recorded finished.

    ``earlier`` lists the labels of the earlier phases in start order (django-q2's check
    needs the order). Returns the last finish time (epoch s) and every label in start
    order. BenchError when a child fails, when nothing starts for 60 s, or after
    ``deadline`` (``time.monotonic()``).
    """
    wanted = set(labels)
    seen, progress = -1, time.monotonic()
    while True:
        starts = {k: v for k, v in bench.udp.starts(run).items() if k in wanted}
        now = time.monotonic()
        if len(starts) != seen:
            seen, progress = len(starts), now
        if len(starts) >= len(wanted) or now - progress > 3:
            order = earlier + sorted(starts, key=starts.__getitem__)
            done, last = system.done(monitor, total, order)
            if done and last is not None:
                return last, order
        for child, what in children:
            if child.poll() not in (None, 0):
                raise BenchError(f"the {what} exited ({child.returncode}); logs in {log.parent}")
        if now - progress > 60:
            raise BenchError(f"stalled: {seen}/{len(wanted)} jobs started, none in the last 60 s (log {log})")
        if deadline is not None and now > deadline:
            raise BenchError(f"{seen}/{len(wanted)} jobs started, not all recorded finished in time (log {log})")
        time.sleep(0.02 if len(starts) >= len(wanted) else 0.05)
