"""Procrastinate on PostgreSQL, for ``bench/throughput.py``.

One worker process with ``concurrency=2`` (procrastinate runs a sync task in a
thread); every other option at its default (LISTEN/NOTIFY on, jobs kept).

    PROCRASTINATE_DSN=postgresql://... python -m procrastinate --app bench.peer_procrastinate.app schema --apply
    PROCRASTINATE_DSN=postgresql://... python -m procrastinate --app bench.peer_procrastinate.app worker --concurrency 2
Submitting: ``app.open()`` once, then ``noop.defer(label=label)``.
"""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector

from bench.tp_probe import report_started

app = App(connector=PsycopgConnector(conninfo=os.environ.get("PROCRASTINATE_DSN", "")))


@app.task(name="bench_noop")
def noop(label: str) -> None:
    """Do nothing but report the start time for ``label``."""
    report_started(label)

