"""Every environment variable the project reads, declared once with its type and default.

``project/settings.py`` reads them through ``env(name)``, which parses each
value to its declared type and names the variable when it does not parse.
A few are read where they are used, before or without settings (``BIND``,
``WEB_SYNC_THREADS``, ``WEB_WAITING_THREADS``, ``DEMO_PASSWORD``): they are
declared here all the same, so that they are documented. The engine's
``JOBS_*`` variables (all but ``JOBS_BROKER``) are declared with its settings
in ``jobs/conf.py`` and read there (``jobs.conf.from_environment``).

README.md's "Configuration" table is rendered from these declarations
(``python -m project.env`` prints it) and a test compares the two, so a
variable cannot be added without being documented.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from jobs import conf as jobs_conf
from jobs.conf import parse_env

# `env(name, default=...)` without a default argument: use the declared one.
_DECLARED: Any = object()


@dataclass(frozen=True)
class Var:
    """One environment variable: its type, default, meaning and allowed values.

    ``default_text`` is how the README shows the default when the value
    alone would mislead (a default that depends on other variables, or on
    the kind of process). ``choices``, when given, are the only values
    accepted.
    """

    name: str
    type: type
    default: Any
    doc: str
    default_text: str | None = None
    choices: tuple[str, ...] = ()

    def shown_default(self) -> str:
        """The default as the README's table shows it."""
        if self.default_text is not None:
            return self.default_text
        if self.default is None or self.default == "":
            return "unset"
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        if isinstance(self.default, list):
            return f"`{','.join(self.default)}`" if self.default else "empty"
        return f"`{self.default}`"


# In the order of README.md's table. Defaults that depend on other variables
# are None here and computed in settings.py; default_text says what they are.
_PROJECT_VARS: tuple[Var, ...] = (
    Var(
        "DJANGO_SECRET_KEY", str, "", "Django's secret key; web and workers must share it",
        default_text="required unless `DJANGO_DEBUG=1` (`make run` generates one)",
    ),
    Var("DJANGO_DEBUG", bool, False, "debug mode"),
    Var("ALLOWED_HOSTS", list, ["localhost", "127.0.0.1", "[::1]"], "comma-separated host names"),
    Var(
        "DJANGO_HTTPS", bool, False,
        "the site is served over HTTPS only: plain HTTP is redirected, cookies are `Secure`, "
        "HSTS is sent (see \"Production\")",
    ),
    Var(
        "DJANGO_HSTS_SECONDS", int, None,
        "`Strict-Transport-Security` max-age; try `300` first, `0` sends none",
        default_text="`31536000` (a year) with `DJANGO_HTTPS=1`, else `0`",
    ),
    Var(
        "DJANGO_HSTS_PRELOAD", bool, None,
        "HSTS with `includeSubDomains; preload` (every subdomain must serve HTTPS too)",
        default_text="on with `DJANGO_HTTPS=1`",
    ),
    Var(
        "DJANGO_TRUST_X_FORWARDED_PROTO", bool, False,
        "a request with `X-Forwarded-Proto: https` came over HTTPS; set it only behind a proxy "
        "that sets that header itself",
    ),
    Var(
        "CSRF_TRUSTED_ORIGINS", list, [],
        "comma-separated origins (`https://shop.example.com`) allowed to send session-authenticated "
        "writes besides the site's own",
    ),
    Var(
        "DATABASE_URL", str, "", "e.g. `postgres://postgres@127.0.0.1:5432/jobs`",
        default_text="`sqlite:///var/db.sqlite3`",
    ),
    Var(
        "REDIS_URL", str, "",
        "e.g. `redis://127.0.0.1:6379/0`: the cache (throttles) and, unless `JOBS_BROKER` says "
        "otherwise, django-q2's Redis broker",
    ),
    Var(
        "JOBS_BROKER", str, None, "which broker carries jobs (see \"Brokers\")",
        default_text="`database` on PostgreSQL, `redis` with `REDIS_URL`, `orm` on SQLite",
        choices=("database", "redis", "orm"),
    ),
    Var("Q_WORKERS", int, 2, "django-q2 worker processes per cluster"),
    Var("Q_TIMEOUT", int, 300, "seconds after which django-q2 kills a task"),
    Var("Q_RETRY", int, 360, "seconds after which django-q2 delivers an unacknowledged task again"),
    Var(
        "Q_POLL", float, None, "seconds between looks at the queue",
        default_text="`0.05` (`orm` broker on PostgreSQL), else `1.0`",
    ),
    Var(
        "Q_BULK", int, None,
        "jobs a cluster takes per look (more is cheaper for many short jobs, fewer shares long "
        "jobs better between clusters)",
        default_text="2 x `Q_WORKERS`",
    ),
    Var("Q_RECYCLE", int, 1000, "tasks before a worker process is replaced"),
    Var("PURCHASES_PAYMENT_DELAY", float, 2.0, "seconds the simulated payment provider takes"),
    Var("PURCHASES_TIMEOUT", int, 120, "seconds a purchase job may run"),
    Var(
        "PURCHASES_REPORT_DELAY", float, 3.0,
        "seconds of pretend work in the sales report, to show its progress",
    ),
    Var("PURCHASES_REPORT_TIMEOUT", int, 60, "seconds a sales report job may run"),
    Var("BIND", str, "127.0.0.1:8000", "address of `manage.py serve`"),
    Var("API_THROTTLE_POLL", str, "1200/min", "per-user throttle of polls"),
    Var("API_THROTTLE_SUBMIT", str, "120/min", "per-user throttle of submissions"),
    Var(
        "API_THROTTLE_LOGIN_ADDRESS", str, "30/min",
        "sign-in attempts per client address (see \"Security\")",
    ),
    Var(
        "API_THROTTLE_LOGIN_FAILURES", str, "10/min",
        "failed sign-ins per username (see \"Security\")",
    ),
    Var("API_NUM_PROXIES", int, 0, "proxies whose `X-Forwarded-For` is trusted for the client address"),
    Var("API_MAX_BODY_BYTES", int, 64 * 1024, "larger request bodies get `413`"),
    Var(
        "HTTP_MAX_HEADER_BYTES", int, 64 * 1024,
        "a larger request line and headers get `431` and the connection closed",
    ),
    Var(
        "API_TOKEN_CACHE_SECONDS", float, 5.0,
        "seconds a web process remembers a valid API token (a deleted token or a saved user is "
        "forgotten at once in the process that did it, within this time in the others); `0` "
        "turns it off",
        default_text="`5`",
    ),
    Var(
        "DB_CONN_MAX_AGE", int, 60, "seconds PostgreSQL connections are kept",
        default_text="`60` (WSGI, workers), `0` (ASGI web processes)",
    ),
    Var(
        "DB_POOL_MAX_SIZE", int, 0, "above 0: a PostgreSQL connection pool of this size per process",
        default_text="`0` (WSGI, workers), `20` (ASGI web processes)",
    ),
    Var(
        "DB_PREPARE_THRESHOLD", int, 5,
        "runs after which a PostgreSQL connection prepares one of the job layer's statements "
        "(claim, finish, delivery, poll); `0` never prepares (a PgBouncer in transaction mode "
        "before 1.21)",
    ),
    Var(
        "WEB_SYNC_THREADS", int, None,
        "threads per ASGI web process for synchronous views",
        default_text="`DB_POOL_MAX_SIZE`, else `20`",
    ),
    Var(
        "WEB_WAITING_THREADS", int, 1000,
        "threads per ASGI web process for requests that may wait (`Prefer: wait=N`); a backstop "
        "behind `JOBS_MAX_WAITS_PER_USER`",
    ),
    Var(
        "METRICS_TOKEN", str, "",
        "the bearer token a Prometheus scrape of `/metrics` must carry; unset, `/metrics` is a 404 "
        "(see \"Metrics\")",
    ),
    Var(
        "METRICS_ALLOWED_ADDRESSES", list, [],
        "comma-separated client addresses or networks (`10.0.0.0/8`) allowed to scrape `/metrics`; "
        "empty allows any address with the token",
    ),
    Var(
        "PROMETHEUS_MULTIPROC_DIR", str, "",
        "an empty directory shared by the web processes of one machine, so that each scrape adds up "
        "their HTTP metrics (read by prometheus-client; see \"Metrics\")",
    ),
    Var(
        "SQLITE_TEST_PATH", str, "", "the SQLite file the tests use (worker processes share it)",
        default_text="`var/test.sqlite3`",
    ),
    Var("DEMO_PASSWORD", str, "demo-pass-123", "password `manage.py load_demo` gives the user `demo`"),
    Var(
        "DEMO_ADMIN_PASSWORD", str, "admin-pass-123",
        "password `manage.py load_demo` gives the superuser `admin`",
    ),
)  # fmt: skip


def _jobs_vars() -> Iterator[Var]:
    """The engine's settings that an environment variable sets, as variables."""
    for setting in jobs_conf.SETTINGS:
        if setting.env:
            yield Var(
                setting.env_name,
                setting.type,
                setting.default,
                f"`JOBS[\"{setting.name}\"]`: {setting.doc}",
            )


VARIABLES: dict[str, Var] = {var.name: var for var in (*_PROJECT_VARS, *_jobs_vars())}


def env(name: str, default: Any = _DECLARED) -> Any:
    """The typed value of environment variable ``name``, or its default when unset or empty.

    ``default`` replaces the declared default where settings.py computes it
    from other settings (``Q_POLL``, ``Q_BULK``, ``JOBS_BROKER``). An
    undeclared name is a ``KeyError``: declare it above (and regenerate the
    README's table) first.
    """
    var = VARIABLES[name]
    raw = os.environ.get(name)
    if not raw:
        # Empty means unset: `VAR= command` and `VAR=${VAR:-}` give the default.
        # A copy, so that a caller changing a list cannot change the declaration.
        return copy.copy(var.default) if default is _DECLARED else default
    value = parse_env(name, raw, var.type)
    if var.choices and value not in var.choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(var.choices)}, not {value!r}.")
    return value


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|")


def readme_table() -> str:
    """README.md's "Configuration" table: one row per variable, in declaration order."""
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for var in VARIABLES.values():
        lines.append(f"| `{var.name}` | {_cell(var.shown_default())} | {_cell(var.doc)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(readme_table(), end="")
