"""ASGI entry point: ``uvicorn project.asgi:application`` (what ``manage.py serve`` runs).

Under ASGI each request runs its synchronous parts on a thread of its own,
so Django's persistent connections would pile up one per finished thread:
web processes connect per request instead (Django's advice for ASGI), unless
``DB_CONN_MAX_AGE`` says otherwise. Waiting requests (long polls, event
streams) share a few threads with long-lived connections (jobs.waiting).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("DB_CONN_MAX_AGE", "0")

application = get_asgi_application()
