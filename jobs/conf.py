"""The jobs engine's settings, read lazily from ``settings.JOBS``.

Values are looked up at access time, so ``override_settings(JOBS=...)`` works
in tests. Durations are in seconds.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Modules to import at start-up for their @job handlers, besides each
    # installed app's `handlers` module.
    "HANDLER_MODULES": [],
    # Seconds a polling client is told to wait (Retry-After header).
    "RETRY_AFTER": 1,
    # Per-kind defaults; @job(timeout=..., max_attempts=..., ttl=...) overrides.
    "DEFAULT_TIMEOUT": 60,
    "DEFAULT_MAX_ATTEMPTS": 3,
    "DEFAULT_TTL": 7 * 24 * 3600,
    # Exponential backoff between attempts after an unexpected exception.
    "RETRY_BACKOFF_BASE": 2,
    "RETRY_BACKOFF_MAX": 300,
    # Minutes between runs of the schedule that deletes expired jobs.
    "PURGE_EVERY_MINUTES": 5,
    # A processing job holds a lease of its timeout plus this grace period,
    # renewed at each progress report; past it, the reaper takes over.
    "LEASE_GRACE": 30,
    # django-q2 kills a task this many seconds after the job's own timeout,
    # so the runner can first end the job cleanly as "timeout".
    "KILL_MARGIN": 10,
    # Seconds between reaper runs (django-q2's scheduler looks every ~30 s).
    "REAPER_INTERVAL": 30,
    # A pending job whose queue message is this old is sent again: the
    # message may have been lost (broker restart, crash before enqueue).
    "LOST_AFTER": 300,
    # Seconds between django-q2's `retry` and the longest job timeout, below
    # which the system check complains.
    "RETRY_MARGIN": 30,
    # `Prefer: respond-async, wait=N` holds a request thread (not a database
    # connection) while it waits: at most this long.
    "PREFER_WAIT_MAX": 10,
    # `GET /api/jobs/{id}/?wait=N` (an async long poll): at most this long.
    "LONG_POLL_MAX": 30,
    # Seconds between checks of watched jobs where PostgreSQL's LISTEN/NOTIFY
    # is not available (SQLite) or while its listener reconnects.
    "WATCH_INTERVAL": 0.2,
    # Use LISTEN/NOTIFY on PostgreSQL (False: poll there too).
    "WATCH_LISTEN": True,
    # Threads per process that do the database work of waiting requests.
    "WATCH_DB_THREADS": 4,
    # Event streams send a comment this often, so idle proxies keep them open
    # and a vanished client is noticed.
    "STREAM_HEARTBEAT": 15,
    # An event stream ends after this long; EventSource reconnects and resumes.
    "STREAM_MAX_SECONDS": 600,
    # Waits (`Prefer: wait`, `?wait=` long polls, event streams) one user may
    # have open at once, over every web process; one more gets 429. 0: no cap.
    "MAX_WAITS_PER_USER": 20,
    # The cache alias that holds the wait slots: it must be shared by every
    # web process (Redis, or jobs.wait_limits.SlotFileCache on one machine).
    "WAIT_SLOTS_CACHE": "default",
}


class JobsSettings:
    """Attribute access to ``settings.JOBS`` with documented defaults."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown jobs setting: {name!r}")
        return getattr(settings, "JOBS", {}).get(name, DEFAULTS[name])


jobs_settings = JobsSettings()
