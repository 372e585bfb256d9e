"""ASGI entry point: ``uvicorn project.asgi:application`` (what ``manage.py serve`` runs).

Under ASGI each request runs its synchronous parts on a thread of its own,
so Django's persistent connections would pile up one per finished thread.
Web processes therefore borrow PostgreSQL connections from a bounded pool
(``DB_POOL_MAX_SIZE``, 20 per process; 0 turns it off and connects per
request, as Django advises for ASGI without a pool). Workers (qcluster) are
not affected: they keep their persistent connections.

Synchronous views are served in one thread hop (``project/asgi_handler.py``).
Request bodies over their limit are refused before Django reads them
(``project/limits.py``), and each process raises its open-file limit: every
open event stream or long poll holds a socket.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("DB_CONN_MAX_AGE", "0")
os.environ.setdefault("DB_POOL_MAX_SIZE", "20")

django.setup(set_prefix=False)

from project.asgi_handler import OneHopASGIHandler  # noqa: E402 - needs the apps loaded
from project.limits import RequestLimitsMiddleware, raise_open_file_limit  # noqa: E402

raise_open_file_limit()
application = RequestLimitsMiddleware(OneHopASGIHandler())
