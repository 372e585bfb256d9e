"""django-q2's ORM broker on SQLite, woken by the database file's commits instead of a timer.

django-q2's ORM broker looks at its queue table every ``Q_CLUSTER["poll"]``
seconds: a job waits half that interval on average before a worker hears of
it, and every look opens a connection and runs a query, which an idle cluster
pays for all day. On SQLite every writer is on this machine and shares the
same file, and ``PRAGMA data_version`` tells a connection, from shared memory
and without reading a page, whether another connection has committed since
it last asked. So the pusher asks that every few milliseconds on a read-only
connection of its own and looks at the queue only when something was
committed, or at least every ``poll`` seconds (tasks whose retry time came).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any
from urllib.parse import quote

from django.db import DatabaseError, connections
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf, logger

# How often the pusher asks whether anything was committed: the pickup's
# added wait is half of it on average; each ask costs a few microseconds.
WAKE_CHECK_SECONDS = 0.004


class SqliteWakeBroker(ORM):
    """The ORM broker, looking at its queue when the SQLite file changed (see the module)."""

    def __init__(self, list_key: str | None = None) -> None:
        super().__init__(list_key)
        self._watch: sqlite3.Connection | None = None
        self._version: int | None = None
        self._next_look = 0.0
        self._watching = True

    def dequeue(self) -> list[tuple[Any, Any]] | None:
        """Take due tasks when the database changed (or ``poll`` passed); else wait a moment."""
        now = time.monotonic()
        if now < self._next_look and not self._changed():
            # The pusher calls again at once; it checks its stop event in between.
            time.sleep(WAKE_CHECK_SECONDS)
            return None
        self._next_look = now + Conf.POLL
        tasks = list(
            self.get_connection().filter(key=self.list_key, lock__lt=timezone.now())[: Conf.BULK]
        )
        taken = []
        for task in tasks:
            # Another cluster may have been faster: the update then matches nothing.
            if self.get_connection().filter(id=task.id, lock=task.lock).update(lock=self.timeout(task)):
                taken.append((task.pk, task.payload))
        return taken or None

    def _changed(self) -> bool:
        if not self._watching:
            return False
        try:
            if self._watch is None:
                path = connections[Conf.ORM].settings_dict["NAME"]
                # A URI, for read-only mode: quoted, so a path with spaces or "?" still opens.
                self._watch = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, check_same_thread=False)
                self._version = None
            version = self._watch.execute("PRAGMA data_version").fetchone()[0]
        except (sqlite3.Error, DatabaseError, KeyError):
            # E.g. an in-memory database: no file to watch. Polling still works.
            logger.warning(
                "Cannot watch the SQLite database for commits; looking at the queue every %s s.",
                Conf.POLL,
                exc_info=True,
            )
            self._watching = False
            return True
        changed = version != self._version
        self._version = version
        return changed
