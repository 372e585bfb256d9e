"""Celery with Django, for ``bench/throughput.py`` (settings: ``bench/celery_settings.py``).

Workers: ``python -m celery -A bench.peer_celery worker -c 2 -P prefork``;
submitting: ``noop.delay(label)`` after ``django.setup()``.
"""

from __future__ import annotations

import os

from celery import Celery

from bench.tp_probe import report_started

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.celery_settings")

app = Celery("bench_celery")
app.config_from_object("django.conf:settings", namespace="CELERY")


@app.task(name="bench.noop")
def noop(label: str) -> None:
    """Do nothing but report the start time for ``label``."""
    report_started(label)
