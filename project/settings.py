"""Django settings for the jobs project.

Everything that differs between a laptop and production comes from the
environment; the defaults give a working embedded set-up (SQLite and the
django-q2 ORM broker) with nothing to install.

Every environment variable is declared, with its type, default and meaning, in
``project/env.py`` (the ``JOBS_*`` ones in ``jobs/conf.py``) and read here
through ``env(name)``; README.md's "Configuration" table is rendered from them.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from jobs.conf import from_environment as jobs_from_environment
from project.env import env

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEBUG = env("DJANGO_DEBUG")

SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Export a long random value "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set DJANGO_DEBUG=1 for a local development key."
        )
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"

ALLOWED_HOSTS = env("ALLOWED_HOSTS")

# --- HTTPS ----------------------------------------------------------------
# Off by default (development is plain HTTP). DJANGO_HTTPS=1 is the production
# switch: with it, `manage.py check --deploy` reports nothing
# (tests/integration/test_deploy_check.py). Behind a proxy that terminates TLS,
# DJANGO_TRUST_X_FORWARDED_PROTO=1 lets Django see the original scheme, or the
# redirect to HTTPS would loop.
HTTPS = env("DJANGO_HTTPS")
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env("DJANGO_HSTS_SECONDS", default=365 * 24 * 3600 if HTTPS else 0)
# hstspreload.org requires includeSubDomains with preload, so they go together.
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = env("DJANGO_HSTS_PRELOAD", default=HTTPS)
if env("DJANGO_TRUST_X_FORWARDED_PROTO"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "jobs",
    "purchases",
]

MIDDLEWARE = [
    # First, to count and time every request (project/metrics.py).
    "project.metrics.http_metrics",
    "django.middleware.security.SecurityMiddleware",
    # WhiteNoise, async-capable: a waiting request must not hold a thread.
    "project.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

# --- Database -------------------------------------------------------------

SQLITE_PATH = VAR_DIR / "db.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL") or f"sqlite:///{SQLITE_PATH}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # django-q2's ORM broker polls several times a second; reconnecting each
    # time costs PostgreSQL a new backend process. Keep connections, check
    # them before reuse (a restarted server is noticed, not fatal).
    DATABASES["default"]["CONN_MAX_AGE"] = env("DB_CONN_MAX_AGE")
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Django turns psycopg's statement preparation off. The job layer's hot
    # statements (jobs/db.py: claim, finish, delivery, poll) bind on the
    # server and are planned once per connection with it on; the ORM's own
    # queries bind on the client and are never prepared either way.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = env("DB_PREPARE_THRESHOLD") or None
    # ASGI web processes (project/asgi.py) share a bounded pool instead: a
    # burst of requests, each on a thread of its own, then waits for a
    # connection rather than running PostgreSQL out of them.
    if env("DB_POOL_MAX_SIZE") > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": env("DB_POOL_MAX_SIZE"),
            "timeout": 30,
        }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    # The web server and the worker are separate processes writing one file:
    # WAL lets readers proceed during a write, IMMEDIATE transactions take the
    # write lock up front (no "database is locked" on lock upgrade), and the
    # timeout makes writers queue instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # Tests use a file, not memory, so worker subprocesses can share it.
    DATABASES["default"]["TEST"] = {
        "NAME": env("SQLITE_TEST_PATH") or str(VAR_DIR / "test.sqlite3")
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth, i18n, static ---------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# WhiteNoise warns at start-up about a missing directory; before the first
# collectstatic (tests, a fresh clone) there is simply nothing to serve yet.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

LOGIN_URL = "/admin/login/"

# --- REST framework -------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Bearer first: its WWW-Authenticate header turns anonymous requests
        # into 401 rather than 403.
        "project.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["project.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "project.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Generous per-user limits: polling and submitting answer 429 with
    # Retry-After beyond them.
    "DEFAULT_THROTTLE_RATES": {
        "jobs.poll": env("API_THROTTLE_POLL"),
        "jobs.submit": env("API_THROTTLE_SUBMIT"),
        # Password guessing (project/throttling.py): sign-in attempts per client
        # address, and failed sign-ins per username, on the token endpoint and
        # the login pages.
        "auth.address": env("API_THROTTLE_LOGIN_ADDRESS"),
        "auth.username": env("API_THROTTLE_LOGIN_FAILURES"),
    },
    # Proxies in front of the app whose X-Forwarded-For is trusted for the
    # client address; 0 (REMOTE_ADDR only) so a client cannot name its own.
    "NUM_PROXIES": env("API_NUM_PROXIES"),
}
# OpenAPI 3 at /api/schema/ and Swagger UI at /api/docs/, both public (they
# describe the API, not anyone's data); Swagger UI's files are served from
# the sidecar package, not a CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "Jobs API",
    "DESCRIPTION": (
        "Long-running operations as jobs. A submission (such as `POST /api/purchases/`) answers "
        "`202 Accepted` with a job document and its `Location`; poll that URL, honouring "
        "`Retry-After` and sending `If-None-Match`, until `status` is `completed` (read `result`), "
        "`failed` or `cancelled` (read `error`). Authenticate with `Authorization: Bearer <token>` "
        "(from `POST /api/auth/token/`) or a Django session plus CSRF token. Errors are JSON: "
        "`{\"detail\", \"code\"}` or field errors."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": r"/api/",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "jobs.models.JobStatus",
        "OrderStatusEnum": "purchases.models.OrderStatus",
        "TombstoneReasonEnum": "jobs.models.TombstoneReason",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "displayOperationId": True},
    "TAGS": [
        {"name": "shop", "description": "Products, orders, and purchases submitted as jobs."},
        {"name": "jobs", "description": "Poll, list, cancel and delete your jobs."},
        {"name": "auth", "description": "API tokens."},
    ],
}

# Request bodies over this many bytes get 413; JSON nested deeper than this, 400.
API_MAX_BODY_BYTES = env("API_MAX_BODY_BYTES")
# A request line and headers over this many bytes in all get 431 and the
# connection closed, while they are parsed (project/http_protocol.py).
HTTP_MAX_HEADER_BYTES = env("HTTP_MAX_HEADER_BYTES")
# Seconds a web process remembers a valid API token (project/authentication.py).
API_TOKEN_CACHE_SECONDS = env("API_TOKEN_CACHE_SECONDS")
# /metrics answers only scrapes with this bearer token, from these addresses
# when given; unset, it is a 404 (project/metrics.py).
METRICS_TOKEN = env("METRICS_TOKEN")
METRICS_ALLOWED_ADDRESSES = env("METRICS_ALLOWED_ADDRESSES")
API_MAX_JSON_DEPTH = 20

# Throttle counters live in the cache: per process by default, shared
# between processes when Redis is configured.
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }

# --- django-q2 ------------------------------------------------------------
# django-q2 reads Q_CLUSTER once, at import: override_settings cannot change
# it in tests. `retry` must exceed the longest job timeout, or a task still
# running would be delivered a second time (the `jobs` system check says so).

# Which broker carries jobs to the cluster (JOBS_BROKER):
# - "database": the job table itself is the queue (jobs/broker.py): FOR UPDATE
#   SKIP LOCKED deliveries and LISTEN/NOTIFY wake-ups. PostgreSQL only; the
#   default there.
# - "redis": django-q2's Redis broker (REDIS_URL); the default when REDIS_URL is set.
# - "orm": django-q2's ORM broker, a queue table; the default on SQLite, where
#   the cluster looks at it when the file has a new commit (jobs/sqlite_broker.py).
_is_postgres = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
# env() refuses any other value than the three.
JOBS_BROKER = env(
    "JOBS_BROKER", default="redis" if REDIS_URL else "database" if _is_postgres else "orm"
)
if JOBS_BROKER == "database" and not _is_postgres:
    raise ImproperlyConfigured(
        "JOBS_BROKER=database needs PostgreSQL (LISTEN/NOTIFY, SKIP LOCKED): set DATABASE_URL "
        "to a PostgreSQL database, or use JOBS_BROKER=orm."
    )
if JOBS_BROKER == "redis" and not REDIS_URL:
    raise ImproperlyConfigured("JOBS_BROKER=redis needs REDIS_URL, e.g. redis://127.0.0.1:6379/0.")

Q_CLUSTER = {
    "name": "jobs",
    "workers": env("Q_WORKERS"),
    "timeout": env("Q_TIMEOUT"),
    "retry": env("Q_RETRY"),
    # Retries are the job runner's business; django-q2 only re-delivers a
    # task whose worker vanished.
    "max_attempts": 3,
    "ack_failures": True,
    # Jobs keep their outcome on their own row and are sent with save=False;
    # only the schedules' runs (reaper, TTL) are kept, the latest 100.
    "save_limit": 100,
    "catch_up": False,
    # Seconds between looks at the queue. The job table broker is woken by
    # NOTIFY, and on SQLite the ORM broker by the file's commits: both only
    # look this often for tasks whose retry time came. The ORM broker on
    # PostgreSQL polls, so this is its pickup latency (and its idle cost).
    "poll": env("Q_POLL", default=0.05 if JOBS_BROKER == "orm" and _is_postgres else 1.0),
    # Jobs a cluster takes from the queue per look: more is cheaper for many
    # short jobs, fewer shares long jobs better between several clusters.
    "bulk": env("Q_BULK", default=2 * env("Q_WORKERS")),
    # A worker process is replaced after this many tasks (a leak cannot grow for ever).
    "recycle": env("Q_RECYCLE"),
    "label": "Django Q2",
}
if JOBS_BROKER == "redis":
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
if JOBS_BROKER == "database":
    Q_CLUSTER["broker_class"] = "jobs.broker.JobTableBroker"
elif JOBS_BROKER == "orm" and not _is_postgres:
    Q_CLUSTER["broker_class"] = "jobs.sqlite_broker.SqliteWakeBroker"

# The per-user cap on waits and streams (jobs/wait_limits.py) counts slots
# that every web process must see: in Redis when configured, else in files
# under var/ (the web processes of one machine; atomic between them).
if not REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "jobs_waits": {
            "BACKEND": "jobs.wait_limits.SlotFileCache",
            "LOCATION": str(VAR_DIR / "wait-slots"),
            # Never cull live slots: that would let a user past the cap.
            "OPTIONS": {"MAX_ENTRIES": 1_000_000},
        },
    }

# Each cluster saves its status (django-q2's Stat: host, pids, workers) in
# Q_CLUSTER["cache"] every half second; qinfo and the admin dashboard read it
# from other processes, so the cache must be shared: Redis when configured,
# else files under var/ (the processes of one machine).
CACHES["jobs_clusters"] = (
    {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(VAR_DIR / "cluster-stats")}
)
Q_CLUSTER["cache"] = "jobs_clusters"

# --- Application settings -------------------------------------------------

# The jobs engine's settings and defaults are declared in jobs/conf.py; the
# JOBS_* environment variables that are set override them (tests shorten the
# timings, and name extra handler modules such as the fault-injection kinds).
# Override others here, e.g. JOBS = {"DEFAULT_TTL": 3 * 24 * 3600, ...}.
JOBS: dict = {
    "WAIT_SLOTS_CACHE": "default" if REDIS_URL else "jobs_waits",
    # The sales reports' queue (purchases/api/views.py): two at once over all clusters.
    "QUEUE_LIMITS": ["reports=2"],
    **jobs_from_environment(),
}

# Defaults in purchases/conf.py.
PURCHASES = {
    "PAYMENT_DELAY": env("PURCHASES_PAYMENT_DELAY"),
    # Read when the handler is registered, at start-up.
    "TIMEOUT": env("PURCHASES_TIMEOUT"),
    # A few seconds of pretend work in the sales report (0 in the tests).
    "REPORT_DELAY": env("PURCHASES_REPORT_DELAY"),
    # Seconds a sales report job may run (read at start-up, like TIMEOUT).
    "REPORT_TIMEOUT": env("PURCHASES_REPORT_TIMEOUT"),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "filters": {"per_task_info": {"()": "jobs.log_filters.DropPerTaskInfo"}},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "django-q": {"filters": ["per_task_info"]},
    },
}
