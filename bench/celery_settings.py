"""Django settings for the ``celery`` system of ``bench/throughput.py``.

Celery's documented Django set-up: broker Redis (``REDIS_URL``), results in the
database through django-celery-results (``CELERY_RESULT_BACKEND = "django-db"``),
everything else at Celery's defaults. Connections are kept 60 s, as in the project.
"""

from __future__ import annotations

import os

import dj_database_url

SECRET_KEY = "bench"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django_celery_results"]
DATABASES = {
    "default": dj_database_url.parse(
        os.environ["DATABASE_URL"], conn_max_age=60, conn_health_checks=True
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
CELERY_BROKER_URL = os.environ.get("REDIS_URL", "")
CELERY_RESULT_BACKEND = "django-db"
