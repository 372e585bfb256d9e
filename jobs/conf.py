"""The jobs engine's settings: each declared once, with its type, default and meaning.

``jobs_settings`` reads ``settings.JOBS`` at access time, so
``override_settings(JOBS=...)`` works in tests. ``from_environment()`` turns the
``JOBS_*`` environment variables that are set into typed values for
``settings.JOBS``, so a deployment (or a test's worker process) can change a
setting without editing settings.py. Durations are in seconds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Words an environment variable may use for a boolean, compared lower-cased.
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})

# How each type is described when a value does not parse.
_EXPECTED = {
    int: "a whole number",
    float: "a number",
    bool: "one of 1, true, yes, on, 0, false, no, off",
    list: "a comma-separated list",
    str: "text",
}


def parse_env(name: str, raw: str, type_: type) -> Any:
    """Convert the text of environment variable ``name`` to ``type_``.

    ``list`` means a comma-separated list of strings (blank items dropped).
    A value that does not parse raises ``ImproperlyConfigured`` naming the
    variable, so a typo stops start-up with a message rather than a bare
    ``ValueError`` from deep inside settings.py.
    """
    text = raw.strip()
    if type_ is bool:
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
    elif type_ is list:
        return [item.strip() for item in raw.split(",") if item.strip()]
    elif type_ is str:
        return raw
    else:
        try:
            return type_(text)
        except ValueError:
            pass
    raise ImproperlyConfigured(f"{name} must be {_EXPECTED[type_]}, not {raw!r}.")


@dataclass(frozen=True)
class Setting:
    """One engine setting: its key in ``settings.JOBS``, type, default and meaning.

    ``env`` says whether the ``JOBS_<name>`` environment variable sets it;
    settings whose value the project derives itself (``WAIT_SLOTS_CACHE``)
    or that deployments had no reason to change are not read from it.
    """

    name: str
    type: type
    default: Any
    doc: str
    env: bool = True

    @property
    def env_name(self) -> str:
        """The environment variable that sets it: ``JOBS_`` and its name."""
        return f"JOBS_{self.name}"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "HANDLER_MODULES", list, [],
        "extra modules whose `@job` handlers to load (besides each installed app's `handlers`)",
    ),
    Setting("RETRY_AFTER", int, 1, "seconds a polling client is told to wait (`Retry-After`)", env=False),
    Setting("DEFAULT_TIMEOUT", int, 60, "seconds a job may run, unless its `@job(timeout=...)` says"),
    Setting(
        "QUEUE_LIMITS", list, [],
        "execution queues' concurrency limits over all clusters, as `queue=limit` items (e.g. "
        "`reports=2`); a queue not listed has no limit",
    ),
    Setting(
        "DEFAULT_MAX_ATTEMPTS", int, 3, "attempts of a job, unless its `@job(max_attempts=...)` says",
        env=False,
    ),
    Setting("DEFAULT_TTL", int, 7 * 24 * 3600, "seconds a finished job is kept (7 days), unless its `@job(ttl=...)` says"),
    Setting(
        "TOMBSTONE_RETENTION", int, 7 * 24 * 3600,
        "seconds a removed job's owner is told `410 Gone` (when and why it went) instead of `404`",
    ),
    Setting("RETRY_BACKOFF_BASE", int, 2, "base of the exponential backoff between attempts (seconds)"),
    Setting("RETRY_BACKOFF_MAX", int, 300, "longest backoff between attempts (seconds)"),
    Setting("PURGE_EVERY_MINUTES", int, 5, "minutes between runs of the schedule that deletes expired jobs"),
    Setting(
        "LEASE_GRACE", int, 30,
        "seconds a processing job's lease lasts past its timeout (renewed at each progress report); "
        "past it, the reaper takes over",
    ),
    Setting(
        "KILL_MARGIN", int, 10,
        "seconds after a job's timeout that django-q2 kills its task, so the runner can first end "
        "the job cleanly as `timeout`",
    ),
    Setting("REAPER_INTERVAL", int, 30, "seconds between reaper runs (django-q2's scheduler looks every ~30 s)"),
    Setting(
        "LOST_AFTER", int, 300,
        "seconds after which a pending job's queue message is sent again (it may have been lost)",
    ),
    Setting(
        "RETRY_MARGIN", int, 30,
        "seconds `Q_RETRY` must exceed the longest job timeout by (system check `jobs.E001`)",
        env=False,
    ),
    Setting(
        "PREFER_WAIT_MAX", int, 10,
        "longest `Prefer: respond-async, wait=N` (seconds; it holds a request thread, not a "
        "database connection)",
    ),
    Setting("LONG_POLL_MAX", int, 30, "longest `GET /api/jobs/{id}/?wait=N` long poll (seconds)"),
    Setting(
        "WATCH_INTERVAL", float, 0.2,
        "seconds between checks of watched jobs without PostgreSQL's LISTEN/NOTIFY (SQLite, or "
        "while its listener reconnects)",
    ),
    Setting("WATCH_LISTEN", bool, True, "use LISTEN/NOTIFY on PostgreSQL (False: poll there too)", env=False),
    Setting("WATCH_DB_THREADS", int, 4, "threads per process that do the database work of waiting requests"),
    Setting(
        "STREAM_HEARTBEAT", int, 15,
        "seconds between an event stream's comments (idle proxies keep it open, a vanished client "
        "is noticed)",
    ),
    Setting(
        "STREAM_MAX_SECONDS", int, 600,
        "seconds after which an event stream ends (EventSource reconnects and resumes)",
    ),
    Setting(
        "MAX_WAITS_PER_USER", int, 20,
        "waits and event streams one user may have open at once, over every web process (one more "
        "gets `429`; see \"Security\"); `0`: no cap",
    ),
    Setting(
        "WAIT_SLOTS_CACHE", str, "default",
        "the cache alias holding the wait slots, shared by every web process (Redis, or "
        "`jobs.wait_limits.SlotFileCache` on one machine)",
        env=False,
    ),
    Setting(
        "WEBHOOK_ALLOWED_HOSTS", list, [],
        "webhook destinations (`host` or `host:port`) allowed although they resolve to a loopback, "
        "private or link-local address, and allowed over plain http (e.g. `127.0.0.1:9000`)",
    ),
    Setting("WEBHOOK_TIMEOUT", float, 10.0, "seconds a webhook delivery attempt waits for the receiver"),
    Setting("WEBHOOK_RETRY_FOR", int, 24 * 3600, "seconds a webhook is retried before its delivery fails for good (24 h)"),
    Setting("WEBHOOK_BACKOFF_BASE", float, 5.0, "seconds before a webhook's first retry; doubled at each failure"),
    Setting("WEBHOOK_BACKOFF_MAX", int, 3600, "longest wait between a webhook's retries (seconds)"),
    Setting("OPTION_TTL_MIN", int, 60, "shortest `ttl` a client may ask for in `Job-Options` (seconds), unless the kind says"),
    Setting(
        "OPTION_TTL_MAX", int, 7 * 24 * 3600,
        "longest `ttl` a client may ask for in `Job-Options` (seconds, 7 days), unless the kind says",
    ),
    Setting(
        "OPTION_PRIORITY_MAX", int, 10,
        "highest `priority` an ordinary user may ask for in `Job-Options` (staff: any), unless the kind says",
    ),
    Setting(
        "OPTION_RUN_AT_MAX", int, 30 * 24 * 3600,
        "how far ahead a client may set `run-at` in `Job-Options` (seconds, 30 days), unless the kind says",
    ),
)  # fmt: skip

SETTINGS_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}
DEFAULTS: dict[str, Any] = {setting.name: setting.default for setting in SETTINGS}


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``settings.JOBS`` overrides given by ``JOBS_*`` environment variables.

    Only the variables that are set, and not empty, appear in the result (an
    empty value means "the default", as a shell's ``JOBS_X= cmd`` suggests),
    each converted to its setting's type.
    """
    environ = os.environ if environ is None else environ
    return {
        setting.name: parse_env(setting.env_name, environ[setting.env_name], setting.type)
        for setting in SETTINGS
        if setting.env and environ.get(setting.env_name)
    }


class JobsSettings:
    """Attribute access to ``settings.JOBS`` with the declared defaults."""

    def __getattr__(self, name: str) -> Any:
        if name not in SETTINGS_BY_NAME:
            raise AttributeError(f"Unknown jobs setting: {name!r}")
        return getattr(settings, "JOBS", {}).get(name, SETTINGS_BY_NAME[name].default)


jobs_settings = JobsSettings()
