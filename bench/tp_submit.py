"""The submitter process of ``bench/throughput.py``: one system's submit call, back to back.

    python -m bench.tp_submit KIND --jobs N --run RUN --warmups W --out FILE

KIND is how to submit: ``project``, ``q2``, ``procrastinate``, ``celery`` or ``floor``
(the connection details come from the environment the bench sets). It submits W
warm-up jobs (labels ``RUN-w0``...), prints ``BENCH ready {...}``, waits for a line
on stdin, then submits N jobs (labels ``RUN-0``...), reading ``time.time()`` just
before each call, and writes those times, each call's duration and its own CPU
over the loop to FILE as JSON before printing ``BENCH done``.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--warmups", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    submit, info = KINDS[args.kind]()
    for k in range(args.warmups):
        submit(f"{args.run}-w{k}")
    print("BENCH ready " + json.dumps(info), flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit("no go: stopping")

    before: list[float] = []
    durations: list[float] = []
    usage = resource.getrusage(resource.RUSAGE_SELF)
    for i in range(args.jobs):
        label = f"{args.run}-{i}"
        start = time.time()
        tick = time.perf_counter()
        submit(label)
        durations.append(time.perf_counter() - tick)
        before.append(start)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    with open(args.out, "w") as out:
        json.dump({"before": before, "durations": durations, "cpu": cpu}, out)
    print("BENCH done", flush=True)


if __name__ == "__main__":
    main()
