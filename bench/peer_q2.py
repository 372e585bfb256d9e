"""django-q2 on its own, for ``bench/throughput.py``: a plain function task.

Workers: ``DJANGO_SETTINGS_MODULE=bench.q2_settings python manage.py qcluster``;
submitting: ``async_task("bench.peer_q2.noop", label, task_name=label)``.
"""

from __future__ import annotations

from bench.tp_probe import report_started


def noop(label: str) -> None:
    """Do nothing but report the start time for ``label``."""
    report_started(label)
