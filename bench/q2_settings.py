"""Django settings for the ``q2-orm`` and ``q2-redis`` systems of ``bench/throughput.py``.

django-q2 as a user who reads its docs would set it up: two workers, the ORM
broker (``orm: "default"``) or Redis (``REDIS_URL``), every other option at
django-q2's default but ``timeout`` (30 s, below the default ``retry`` of 60 s, which
django-q2 asks for), ``save_limit`` included (250 successful tasks kept; each save
locks them all and prunes the oldest). Connections are kept 60 s, as in the project.
"""

from __future__ import annotations

import os

import dj_database_url

SECRET_KEY = "bench"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django.contrib.contenttypes", "django_q"]
DATABASES = {
    "default": dj_database_url.parse(
        os.environ["DATABASE_URL"], conn_max_age=60, conn_health_checks=True
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# timeout/retry: django-q2 warns at start-up until a timeout below retry is set.
Q_CLUSTER: dict = {"name": "bench", "workers": 2, "timeout": 30, "retry": 60}
if os.environ.get("REDIS_URL"):
    Q_CLUSTER["redis"] = os.environ["REDIS_URL"]
else:
    Q_CLUSTER["orm"] = "default"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"handlers": [], "level": "WARNING"},
}
