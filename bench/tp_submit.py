"""The submitter process of ``bench/throughput.py``: one system's submit call, back to back, then paced.

    python -m bench.tp_submit KIND --jobs N --run RUN --warmups W --out FILE \
        [--paced P --pace-ms MS --paced-out FILE2]

KIND is how to submit: ``project``, ``q2``, ``procrastinate``, ``celery`` or ``floor``
(the connection details come from the environment the bench sets). It submits W
warm-up jobs (labels ``RUN-w0``...), prints ``BENCH ready {...}``, waits for ``go``
on stdin, then submits N jobs back to back (labels ``RUN-0``...), reading
``time.time()`` just before each call, and writes those times, each call's duration
and its own CPU over the loop to FILE as JSON before printing ``BENCH done``.

With ``--paced P`` (P > 0) it then waits for ``paced`` on stdin (anything else: it
exits), submits P jobs (labels ``RUN-p0``...) one at a time, each call starting at
least MS ms after the previous one started (never two at once to catch up), and
writes the same figures to FILE2 before printing ``BENCH paced done``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any


def _django_setup() -> None:
    import django

    django.setup()


def project() -> tuple[Callable[[str], Any], dict[str, Any]]:
    _django_setup()
    from django.conf import settings

    from jobs import submit

    q = getattr(settings, "Q_CLUSTER", {})
    info = {
        "q_cluster_broker": "redis" if "redis" in q else ("orm" if "orm" in q else None),
        "broker_class": q.get("broker_class"),
        "jobs_broker_setting": getattr(settings, "JOBS_BROKER", None),
    }
    return (lambda label: submit("bench.noop", {"label": label}, owner=None)), info


def q2() -> tuple[Callable[[str], Any], dict[str, Any]]:
    _django_setup()
    from django_q.tasks import async_task

    return (lambda label: async_task("bench.peer_q2.noop", label, task_name=label)), {}


def procrastinate() -> tuple[Callable[[str], Any], dict[str, Any]]:
    from bench.peer_procrastinate import app, noop

    app.open()
    return (lambda label: noop.defer(label=label)), {}


def celery() -> tuple[Callable[[str], Any], dict[str, Any]]:
    _django_setup()
    from bench.peer_celery import noop

    return (lambda label: noop.delay(label)), {}


def floor() -> tuple[Callable[[str], Any], dict[str, Any]]:
    from bench.floor import Submitter

    return Submitter(os.environ["FLOOR_DSN"]).submit, {}


KINDS = {"project": project, "q2": q2, "procrastinate": procrastinate, "celery": celery, "floor": floor}


def submit_all(submit: Callable[[str], Any], labels: list[str], out: str, pace: float = 0.0) -> None:
    """Submit ``labels`` in order, each call starting ``pace`` s or more after the previous one started."""
    before: list[float] = []
    durations: list[float] = []
    usage = resource.getrusage(resource.RUSAGE_SELF)
    next_start = time.perf_counter()
    for label in labels:
        if pace:
            wait = next_start - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        start = time.time()
        tick = time.perf_counter()
        submit(label)
        durations.append(time.perf_counter() - tick)
        before.append(start)
        next_start = tick + pace
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    with open(out, "w") as handle:
        json.dump({"before": before, "durations": durations, "cpu": cpu}, handle)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--warmups", type=int, default=2)
    parser.add_argument("--out", required=True)
    parser.add_argument("--paced", type=int, default=0)
    parser.add_argument("--pace-ms", type=float, default=20.0)
    parser.add_argument("--paced-out")
    args = parser.parse_args()
    if args.paced > 0 and not args.paced_out:
        parser.error("--paced needs --paced-out")

    submit, info = KINDS[args.kind]()
    for k in range(args.warmups):
        submit(f"{args.run}-w{k}")
    print("BENCH ready " + json.dumps(info), flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit("no go: stopping")
    submit_all(submit, [f"{args.run}-{i}" for i in range(args.jobs)], args.out)
    print("BENCH done", flush=True)
    if args.paced <= 0 or sys.stdin.readline().strip() != "paced":
        return
    submit_all(submit, [f"{args.run}-p{i}" for i in range(args.paced)], args.paced_out, args.pace_ms / 1000)
    print("BENCH paced done", flush=True)


if __name__ == "__main__":
    main()
