"""Database helpers for the job layer's hot statements."""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections


def prepared_cursor() -> Any:
    """Return a cursor on the default connection whose statements PostgreSQL prepares.

    Django binds parameters on the client, so PostgreSQL plans every
    statement again; the claim, the finish and a delivery cost more to plan
    than to run. With server-side binding psycopg prepares a statement once a
    connection has run it ``prepare_threshold`` times, which Django leaves off
    and the settings turn on (``DB_PREPARE_THRESHOLD``; 0 behind a
    transaction-pooling PgBouncer older than 1.21). The cursor goes through
    Django's wrapper, so queries are counted and logged and errors mark the
    connection as Django expects.
    Elsewhere this is ``connection.cursor()``.
    """
    db = connections[DEFAULT_DB_ALIAS]  # the wrapper: each read through the proxy looks it up again
    if db.vendor != "postgresql":
        return db.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    db.close_if_health_check_failed()
    db.ensure_connection()
    with db.wrap_database_errors:
        return db._prepare_cursor(ServerBindingCursor(db.connection))


def fetch_one_prepared(sql: str, params: list[Any], *, db: Any = None) -> tuple[Any, ...] | None:
    """Run one prepared ``SELECT`` on the default connection and return its first row (or None).

    On PostgreSQL, while nothing observes the connection's queries (no
    ``execute_wrappers``, such as a tracing library's, and no query log:
    ``DEBUG``, ``assertNumQueries``), the statement goes to psycopg directly:
    Django's cursor wrapper costs about as much client CPU as the statement
    itself, which matters on the job poll. Errors are still Django's
    (``wrap_database_errors``), and a broken transaction is still refused.
    Otherwise, and on other databases, it runs through ``prepared_cursor``.
    ``db``: the default connection's wrapper, when the caller already holds it.
    """
    # The wrapper itself, not django.db.connection: each attribute read
    # through that proxy looks the connection up again.
    if db is None:
        db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "postgresql" and not db.execute_wrappers and not db.queries_logged:
        from django.db.backends.postgresql.base import ServerBindingCursor

        db.close_if_health_check_failed()
        db.ensure_connection()
        db.validate_no_broken_transaction()
        with db.wrap_database_errors, ServerBindingCursor(db.connection) as cursor:
            return cursor.execute(sql, params).fetchone()
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def db_time(value: Any) -> Any:
    """A datetime as a raw statement's parameter: itself on PostgreSQL, SQLite's text elsewhere."""
    if connection.vendor == "postgresql" or value is None:
        return value
    return connection.ops.adapt_datetimefield_value(value)
