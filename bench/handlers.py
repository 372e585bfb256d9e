"""The no-op job kind the throughput benchmark submits (``JOBS_HANDLER_MODULES=bench.handlers``).

The handler's first action records when it started (a UDP datagram to the
bench, see ``bench/tp_probe.py``), so pickup is measured the same way for
every system ``bench/throughput.py`` compares.
"""

from __future__ import annotations

from typing import Any

from bench.tp_probe import report_started
from jobs import JobContext, job


@job("bench.noop", timeout=30, ttl=3600)
def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Do nothing but report the start time for ``payload["label"]``."""
    report_started(payload["label"])
