"""Database helpers for the job layer's hot statements."""

from __future__ import annotations

from typing import Any

from django.db import connection


def prepared_cursor() -> Any:
    """Return a cursor on the default connection whose statements PostgreSQL prepares.

    Django binds parameters on the client by default, so PostgreSQL plans
    every statement again; the claim, the finish and a delivery cost more to
    plan than to run. With server-side binding psycopg prepares a statement
    after a few runs on the same connection (its ``prepare_threshold``; set
    ``OPTIONS["prepare_threshold"] = None`` behind a transaction-pooling
    PgBouncer). The cursor goes through Django's wrapper, so queries are
    counted and logged and errors mark the connection as Django expects.
    Elsewhere this is ``connection.cursor()``.
    """
    if connection.vendor != "postgresql":
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(ServerBindingCursor(connection.connection))


def db_time(value: Any) -> Any:
    """A datetime as a raw statement's parameter: itself on PostgreSQL, SQLite's text elsewhere."""
    if connection.vendor == "postgresql" or value is None:
        return value
    return connection.ops.adapt_datetimefield_value(value)
