"""WSGI entry point: ``gunicorn project.wsgi:application``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# Job polls are plain sync views here; only long polls go async (jobs/api/streams.py).
os.environ["JOBS_WSGI_PROCESS"] = "1"

application = get_wsgi_application()
